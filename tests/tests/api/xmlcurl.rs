//! `POST /freeswitch/xml`: mod_xml_curl directory and dialplan lookups, driven by request
//! bodies captured from a real FreeSWITCH 1.10.12 (`tests/fixtures/freeswitch/xmlcurl/`) with
//! only the user and domain fields swapped for this test's data. Every answer is checked by
//! parsing the XML, never by string equality.

use std::collections::BTreeMap;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use secrecy::SecretString;
use serde_json::{Value, json};
use switchboard_domain::telephony::secrets::a1_hash;
use switchboard_tests::{TestApp, both_databases};

use crate::devices::{create, domain_with_admin, id_of};
use crate::users::{call, create_domain};

both_databases!(
    a_fixed_device_registers_with_its_owners_identity_and_an_a1_hash,
    a_hot_desk_phone_follows_the_person_and_falls_back_when_logged_out,
    an_extension_is_one_complete_user_whose_dial_string_is_its_ring_plan,
    dnd_forwards_and_voicemail_decide_what_a_call_rings,
    gateways_bare_domains_groups_and_message_count,
    disabled_domains_devices_and_extensions_are_not_found,
    parallel_changes_are_each_seen_by_the_next_lookup,
    a_change_to_phones_is_applied_in_place_as_a_whole_read_would_answer,
    changes_to_many_domains_at_once_are_each_seen,
    the_dialplan_serves_feature_codes_and_the_logged_out_context,
    the_domain_context_rings_extensions_and_applies_their_outcomes,
    calls_leave_through_outbound_routes_with_failover_toll_classes_and_caller_ids,
    emergency_calls_from_a_logged_out_phone_leave_as_the_place_and_reach_the_live_stream,
    the_public_context_takes_calls_for_numbers_only_from_gateways,
    recording_policies_reach_the_dialplan_and_the_explanation with |c: &mut switchboard_tests::Config| c.freeswitch.recordings_dir = "/var/spool/calls".to_owned(),
    xml_injection_in_every_text_field_comes_back_escaped,
    malformed_and_unknown_requests_get_not_found_never_a_500,
    credentials_are_checked with |c: &mut switchboard_tests::Config| c.freeswitch.xml_curl.password = Some(secrecy::SecretString::from(XML_CURL_PASSWORD)),
    an_address_outside_the_allow_list_is_refused with |c: &mut switchboard_tests::Config| c.freeswitch.xml_curl.allowed_networks = vec!["10.0.0.0/8".to_owned()],
    the_last_good_view_answers_while_the_database_cannot_be_read,
    cacheable_follows_the_configuration with |c: &mut switchboard_tests::Config| c.freeswitch.xml_curl.cacheable_ms = 0,
);

const SIP: &str = "acme.example.net";
const XML_CURL_PASSWORD: &str = "xml-curl-test-password";
const PIN: &str = "4711";

// ---------------------------------------------------------------------------------------------
// Requests and answers
// ---------------------------------------------------------------------------------------------

/// A captured request body with some fields set to new values (others kept byte for byte).
pub(crate) fn fixture(name: &str, set: &[(&str, &str)]) -> String {
    let path = format!(
        "{}/fixtures/freeswitch/xmlcurl/{name}.body",
        env!("CARGO_MANIFEST_DIR")
    );
    let raw = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut seen = Vec::new();
    let mut parts: Vec<String> = raw
        .split('&')
        .map(|pair| {
            let key = pair.split('=').next().unwrap_or_default();
            match set.iter().find(|(k, _)| *k == key) {
                Some((k, v)) => {
                    seen.push(*k);
                    format!("{k}={}", utf8_percent_encode(v, NON_ALPHANUMERIC))
                }
                None => pair.to_owned(),
            }
        })
        .collect();
    for (k, v) in set {
        if !seen.contains(k) {
            parts.push(format!("{k}={}", utf8_percent_encode(v, NON_ALPHANUMERIC)));
        }
    }
    parts.join("&")
}

fn sip_auth(user: &str) -> String {
    fixture(
        "directory-sip_auth-register",
        &[
            ("user", user),
            ("sip_auth_username", user),
            ("sip_from_user", user),
            ("sip_to_user", user),
            ("sip_contact_user", user),
        ],
    )
}

fn user_call(user: &str) -> String {
    fixture("directory-user_call", &[("user", user)])
}

async fn post(app: &TestApp, body: String) -> reqwest::Response {
    app.request(Method::POST, "/freeswitch/xml")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("User-Agent", "freeswitch-xml/1.0")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Posts and returns the document (asserting 200 and an XML content type).
async fn ask(app: &TestApp, body: String) -> String {
    let response = post(app, body).await;
    let status = response.status();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(content_type.starts_with("text/xml"), "{content_type}");
    text
}

fn parse(doc: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse(doc).unwrap_or_else(|e| panic!("not XML ({e}): {doc}"))
}

fn is_not_found(doc: &str) -> bool {
    parse(doc)
        .descendants()
        .any(|n| n.has_tag_name("result") && n.attribute("status") == Some("not found"))
}

/// One user of a directory answer: its attributes, params and variables.
#[derive(Debug)]
struct User {
    attributes: BTreeMap<String, String>,
    params: BTreeMap<String, String>,
    variables: BTreeMap<String, String>,
}

fn pairs(node: roxmltree::Node<'_, '_>, list: &str, item: &str) -> BTreeMap<String, String> {
    node.children()
        .filter(|n| n.has_tag_name(list))
        .flat_map(|l| l.children().filter(|n| n.has_tag_name(item)))
        .map(|n| {
            (
                n.attribute("name").unwrap_or_default().to_owned(),
                n.attribute("value").unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Every user in a directory document, by id.
fn users(doc: &str) -> BTreeMap<String, User> {
    let parsed = parse(doc);
    let root = parsed.root_element();
    assert_eq!(root.attribute("type"), Some("freeswitch/xml"));
    parsed
        .descendants()
        .filter(|n| n.has_tag_name("user"))
        .map(|n| {
            let attributes = n
                .attributes()
                .map(|a| (a.name().to_owned(), a.value().to_owned()))
                .collect();
            (
                n.attribute("id").unwrap_or_default().to_owned(),
                User {
                    attributes,
                    params: pairs(n, "params", "param"),
                    variables: pairs(n, "variables", "variable"),
                },
            )
        })
        .collect()
}

/// The one user of an answer, checking it is the one asked for and sits in the Domain.
fn the_user(doc: &str, id: &str) -> User {
    let parsed = parse(doc);
    let domains: Vec<_> = parsed
        .descendants()
        .filter(|n| n.has_tag_name("domain"))
        .map(|n| n.attribute("name").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(domains, [SIP], "{doc}");
    let mut all = users(doc);
    assert_eq!(all.len(), 1, "exactly the user asked for: {doc}");
    let user = all
        .remove(id)
        .unwrap_or_else(|| panic!("no user {id}: {doc}"));
    assert!(
        !user.attributes.contains_key("type"),
        "a typed user matches every lookup"
    );
    assert!(!user.params.contains_key("password"), "never the plaintext");
    user
}

/// Domain names in a document.
fn domain_names(doc: &str) -> Vec<String> {
    parse(doc)
        .descendants()
        .filter(|n| n.has_tag_name("domain"))
        .map(|n| n.attribute("name").unwrap_or_default().to_owned())
        .collect()
}

/// The actions of a dialplan answer as `application data` lines, with the context and
/// condition expression.
/// The actions of 201's voicemail reached for a reason: greeting `slot` when the box has it.
fn voicemail_with_greeting(slot: u8) -> Vec<String> {
    vec![
        format!(
            "set switchboard_greeting=${{file_exists(${{storage_dir}}/voicemail/default/{SIP}/201/greeting_{slot}.wav)}}"
        ),
        format!("set voicemail_greeting_number={slot}"),
        "answer".to_owned(),
        format!("voicemail default {SIP} 201"),
    ]
}

fn dialplan(doc: &str) -> (String, String, Vec<String>) {
    let parsed = parse(doc);
    let context = parsed
        .descendants()
        .find(|n| n.has_tag_name("context"))
        .and_then(|n| n.attribute("name"))
        .unwrap_or_else(|| panic!("no context: {doc}"))
        .to_owned();
    let condition = parsed
        .descendants()
        .find(|n| n.has_tag_name("condition"))
        .unwrap_or_else(|| panic!("no condition: {doc}"));
    assert_eq!(condition.attribute("field"), Some("destination_number"));
    // Every condition's actions, in order (a voicemail step adds one checking the greeting).
    let actions = parsed
        .descendants()
        .filter(|n| n.has_tag_name("condition"))
        .flat_map(|c| c.children())
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
        .collect();
    (
        context,
        condition
            .attribute("expression")
            .unwrap_or_default()
            .to_owned(),
        actions,
    )
}

// ---------------------------------------------------------------------------------------------
// Data through the API
// ---------------------------------------------------------------------------------------------

struct Acme {
    domain: String,
    admin: String,
}

async fn acme(app: &TestApp) -> Acme {
    let (domain, admin) = domain_with_admin(app, SIP).await;
    Acme { domain, admin }
}

impl Acme {
    async fn create(&self, app: &TestApp, what: &str, body: Value) -> Value {
        create(app, &self.admin, &self.domain, what, body).await
    }

    async fn patch(&self, app: &TestApp, what: &str, id: &str, body: Value) -> Value {
        let (status, changed) = call(
            app,
            &self.admin,
            Method::PATCH,
            &format!("/api/v1/domains/{}/{what}/{id}", self.domain),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 200, "patching {what} with {body}: {changed}");
        changed
    }

    async fn send(&self, app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = call(
            app,
            &self.admin,
            method.clone(),
            &format!("/api/v1/domains/{}{path}", self.domain),
            body,
        )
        .await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {answer}"
        );
        answer
    }

    /// (sip_username, plaintext secret) of a device.
    async fn device_secret(&self, app: &TestApp, device: &str) -> (String, String) {
        let s = self
            .send(
                app,
                Method::GET,
                &format!("/devices/{device}/sip-secret"),
                None,
            )
            .await;
        (
            s["sip_username"].as_str().unwrap().to_owned(),
            s["sip_secret"].as_str().unwrap().to_owned(),
        )
    }

    /// A fixed desk phone owned by `owner`.
    async fn desk(&self, app: &TestApp, owner: &Value) -> Value {
        self.create(
            app,
            "devices",
            json!({"label": "Desk", "mode": "fixed", "owner_extension_id": owner["id"]}),
        )
        .await
    }

    async fn alice(&self, app: &TestApp, extra: Value) -> Value {
        let mut body = json!({
            "number": "201", "display_name": "Alice Anders", "pin": PIN,
            "hotdesk_allowed": true, "outbound_caller_id_number": "+4930123456",
            "account_code": "acme", "toll_allow": ["local", "domestic"],
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.create(app, "extensions", body).await
    }
}

fn sip_user(device: &Value) -> String {
    device["sip_username"].as_str().unwrap().to_owned()
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

async fn a_fixed_device_registers_with_its_owners_identity_and_an_a1_hash(app: TestApp) {
    let a = acme(&app).await;
    let alice = a.alice(&app, json!({})).await;
    let location = a
        .create(
            &app,
            "locations",
            json!({"name": "HQ", "emergency_caller_id_number": "+4930111"}),
        )
        .await;
    let phone = a
        .create(
            &app,
            "devices",
            json!({"label": "Alice's desk", "mode": "fixed", "owner_extension_id": alice["id"],
                   "location_id": location["id"]}),
        )
        .await;
    let (user, secret) = a.device_secret(&app, &id_of(&phone)).await;

    let doc = ask(&app, sip_auth(&user)).await;
    let u = the_user(&doc, &user);
    assert_eq!(
        u.params["a1-hash"],
        a1_hash(&user, SIP, &SecretString::from(secret)),
        "md5(user:realm:secret)"
    );
    assert_eq!(u.params["max-registrations-per-extension"], "2");
    assert_eq!(u.params["allow-empty-password"], "false");
    assert_eq!(
        u.params["mwi-account"],
        format!("201@{SIP}"),
        "the owner's mailbox"
    );
    assert_eq!(
        u.params["dial-string"],
        format!(
            "{{^^:sip_invite_domain={SIP}:presence_id=201@{SIP}}}${{sofia_contact(*/{user}@{SIP})}}"
        )
    );
    assert_eq!(u.attributes["cacheable"], "300000", "the default cacheable");
    let v = &u.variables;
    assert_eq!(v["user_context"], SIP);
    assert_eq!(v["effective_caller_id_name"], "Alice Anders");
    assert_eq!(v["effective_caller_id_number"], "201");
    assert_eq!(v["outbound_caller_id_number"], "+4930123456");
    assert_eq!(v["toll_allow"], "local,domestic");
    assert_eq!(v["accountcode"], "acme");
    assert_eq!(v["presence_id"], format!("201@{SIP}"));
    assert_eq!(
        v["emergency_caller_id_number"], "+4930111",
        "from the Location"
    );
    assert_eq!(v["switchboard_device_id"], id_of(&phone));
    assert_eq!(v["switchboard_extension"], "201");
    assert_eq!(v["switchboard_extension_id"], id_of(&alice));
    assert_eq!(v["switchboard_domain"], SIP);
    assert_eq!(v["switchboard_domain_id"], a.domain);
    assert_eq!(v["switchboard_restricted"], "false");
    assert_eq!(v["switchboard_record_inbound"], "never");

    // The same complete user whatever the action: INVITE auth, user_call, user_exists.
    for body in [
        fixture(
            "directory-sip_auth-invite",
            &[("user", &user), ("sip_auth_username", &user)],
        ),
        user_call(&user),
        fixture("directory-user-lookup-user_exists", &[("user", &user)]),
        // FreeSWITCH matches ids case-insensitively.
        sip_auth(&user.to_uppercase()),
    ] {
        let again = the_user(&ask(&app, body).await, &user);
        assert_eq!(again.params, u.params);
        assert_eq!(again.variables, u.variables);
    }

    // Rotating the secret changes the a1-hash in the very next lookup.
    a.send(
        &app,
        Method::POST,
        &format!("/devices/{}/rotate-secret", id_of(&phone)),
        None,
    )
    .await;
    let (_, rotated) = a.device_secret(&app, &id_of(&phone)).await;
    let u = the_user(&ask(&app, sip_auth(&user)).await, &user);
    assert_eq!(
        u.params["a1-hash"],
        a1_hash(&user, SIP, &SecretString::from(rotated))
    );

    // Unknown users, and users of another Domain's name, are not found.
    assert!(is_not_found(&ask(&app, sip_auth("dnosuchuser0")).await));
    let other = fixture(
        "directory-sip_auth-register-globex",
        &[("user", &user), ("sip_auth_username", &user)],
    );
    assert!(is_not_found(&ask(&app, other).await), "globex is not ours");
}

async fn a_hot_desk_phone_follows_the_person_and_falls_back_when_logged_out(app: TestApp) {
    let a = acme(&app).await;
    let alice = a.alice(&app, json!({})).await;
    let lobby = a
        .create(
            &app,
            "extensions",
            json!({"number": "299", "display_name": "Lobby", "placeholder": true,
                   "hotdesk_allowed": false, "voicemail_enabled": false}),
        )
        .await;
    let desk = a
        .create(
            &app,
            "devices",
            json!({"label": "Hot desk 1", "mode": "hotdesk"}),
        )
        .await;
    let user = sip_user(&desk);

    // Logged out, full: the restricted context and nothing of a person.
    let u = the_user(&ask(&app, sip_auth(&user)).await, &user);
    assert!(u.params.contains_key("a1-hash"), "it still registers");
    assert_eq!(u.variables["user_context"], "switchboard-logged-out");
    assert_eq!(u.variables["switchboard_restricted"], "true");
    assert_eq!(u.variables["toll_allow"], "");
    assert!(!u.variables.contains_key("effective_caller_id_number"));
    assert!(!u.variables.contains_key("switchboard_extension"));
    assert!(!u.params.contains_key("mwi-account"));

    // Logged in (through the API): Alice's identity and mailbox, at once.
    a.send(
        &app,
        Method::PUT,
        &format!("/devices/{}/session", id_of(&desk)),
        Some(json!({"extension": "201", "pin": PIN})),
    )
    .await;
    let u = the_user(&ask(&app, sip_auth(&user)).await, &user);
    assert_eq!(u.variables["user_context"], SIP);
    assert_eq!(u.variables["effective_caller_id_name"], "Alice Anders");
    assert_eq!(u.variables["switchboard_extension_id"], id_of(&alice));
    assert_eq!(u.params["mwi-account"], format!("201@{SIP}"));
    // ... and Alice's number now rings the desk.
    let ext = the_user(&ask(&app, user_call("201")).await, "201");
    assert!(
        ext.params["dial-string"].contains(&format!("${{sofia_contact(*/{user}@{SIP})}}")),
        "{}",
        ext.params["dial-string"]
    );

    // Placeholder mode: logged out, the phone calls as the placeholder, a real Extension
    // with its own context and toll classes (its limits are its own).
    a.patch(
        &app,
        "devices",
        &id_of(&desk),
        json!({"logged_out_mode": "placeholder", "placeholder_extension_id": lobby["id"]}),
    )
    .await;
    a.send(
        &app,
        Method::DELETE,
        &format!("/devices/{}/session", id_of(&desk)),
        None,
    )
    .await;
    let u = the_user(&ask(&app, sip_auth(&user)).await, &user);
    assert_eq!(u.variables["effective_caller_id_name"], "Lobby");
    assert_eq!(u.variables["switchboard_extension"], "299");
    assert_eq!(u.variables["user_context"], SIP);
    assert_eq!(u.variables["switchboard_restricted"], "false");
    let ext = the_user(&ask(&app, user_call("201")).await, "201");
    assert!(
        !ext.params["dial-string"].contains(&user),
        "logged out, the desk no longer rings for 201"
    );
}

async fn an_extension_is_one_complete_user_whose_dial_string_is_its_ring_plan(app: TestApp) {
    let a = acme(&app).await;
    let alice = a
        .alice(
            &app,
            json!({"sip_registration": {"enabled": true, "max_registrations": 3},
                   "ring_timeout_secs": 25}),
        )
        .await;
    let fixed = a.desk(&app, &alice).await;
    let office = a
        .create(
            &app,
            "locations",
            json!({"name": "Office", "ring_strategy": "sequential"}),
        )
        .await;
    let first = a
        .create(
            &app,
            "devices",
            json!({"label": "Office 1", "location_id": office["id"], "location_ring_timeout_secs": 15}),
        )
        .await;
    let second = a
        .create(
            &app,
            "devices",
            json!({"label": "Office 2", "location_id": office["id"], "location_ring_timeout_secs": 10}),
        )
        .await;
    a.send(
        &app,
        Method::PUT,
        &format!("/extensions/{}/location", id_of(&alice)),
        Some(json!({"location_id": office["id"]})),
    )
    .await;

    let doc = ask(&app, user_call("201")).await;
    let u = the_user(&doc, "201");
    let contact = |d: &Value| format!("${{sofia_contact(*/{}@{SIP})}}", sip_user(d));
    // Each device's leg names the device (and its Location) for the call history.
    let device = |d: &Value| format!("switchboard_device_id={}", id_of(d));
    let located = |_: &Value| format!("switchboard_location_id={}", office["id"].as_str().unwrap());
    let vars = format!(
        "{{^^:sip_invite_domain={SIP}:presence_id=201@{SIP}:originate_timeout=25:callee_id_name='Alice Anders':callee_id_number=201:switchboard_extension=201}}"
    );
    assert_eq!(
        u.params["dial-string"],
        format!(
            "{vars}${{sofia_contact(*/201@{SIP})}},[{}]{}:_:{vars}[leg_timeout=15,{},{}]{}|[leg_timeout=10,{},{}]{}",
            device(&fixed),
            contact(&fixed),
            device(&first),
            located(&first),
            contact(&first),
            device(&second),
            located(&second),
            contact(&second)
        ),
        "personal group (direct registration, fixed) in parallel with the Location's sequential hunt"
    );
    // Direct registration: credentials and its own cap; the extension's mailbox.
    let (status, secret) = call(
        &app,
        &a.admin,
        Method::GET,
        &format!(
            "/api/v1/domains/{}/extensions/{}/sip-secret",
            a.domain,
            id_of(&alice)
        ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{secret}");
    assert_eq!(
        u.params["a1-hash"],
        a1_hash(
            "201",
            SIP,
            &SecretString::from(secret["sip_secret"].as_str().unwrap().to_owned())
        )
    );
    assert_eq!(u.params["max-registrations-per-extension"], "3");
    assert_eq!(u.params["mwi-account"], format!("201@{SIP}"));
    assert_eq!(u.variables["user_context"], SIP);
    assert_eq!(
        u.variables["switchboard_on_no_answer"],
        format!("loopback/201@{SIP}/switchboard-voicemail")
    );

    // The REGISTER of 201 gets the very same user (FreeSWITCH caches it for both).
    let registered = the_user(&ask(&app, sip_auth("201")).await, "201");
    assert_eq!(registered.params, u.params);
    assert_eq!(registered.variables, u.variables);

    // An Extension without direct registration can be called but never registers.
    a.create(
        &app,
        "extensions",
        json!({"number": "202", "display_name": "Bob"}),
    )
    .await;
    let bob = the_user(&ask(&app, sip_auth("202")).await, "202");
    assert_eq!(bob.params["sip-forbid-register"], "true");
    assert_eq!(bob.params["allow-empty-password"], "false");
    assert!(!bob.params.contains_key("a1-hash"));
    assert_eq!(bob.variables["effective_caller_id_name"], "Bob");

    // Signing out of the Location drops its hunt from the next lookup.
    a.send(
        &app,
        Method::DELETE,
        &format!("/extensions/{}/location", id_of(&alice)),
        None,
    )
    .await;
    let u = the_user(&ask(&app, user_call("201")).await, "201");
    assert!(!u.params["dial-string"].contains(":_:"));
    assert!(!u.params["dial-string"].contains(&sip_user(&first)));
}

async fn dnd_forwards_and_voicemail_decide_what_a_call_rings(app: TestApp) {
    let a = acme(&app).await;
    let alice = a.alice(&app, json!({})).await;
    let id = id_of(&alice);
    // Nothing bound, voicemail on: straight to the mailbox.
    assert_eq!(
        dial_string(&app).await,
        format!("loopback/201@{SIP}/switchboard-voicemail")
    );
    // Forward when not registered wins over voicemail.
    a.patch(
        &app,
        "extensions",
        &id,
        json!({"forwarding": {"not_registered": {"enabled": true, "destination": "+4930777"}}}),
    )
    .await;
    assert_eq!(dial_string(&app).await, format!("loopback/+4930777/{SIP}"));
    // Forward always, in the Extension's own context.
    a.patch(
        &app,
        "extensions",
        &id,
        json!({"context": "acme-sales", "forwarding": {"always": {"enabled": true, "destination": "*98"}}}),
    )
    .await;
    assert_eq!(dial_string(&app).await, "loopback/*98/acme-sales");
    // DND wins over everything.
    a.patch(&app, "extensions", &id, json!({"dnd": true})).await;
    assert_eq!(dial_string(&app).await, "error/user_busy");
    // Nothing at all: unavailable.
    a.patch(
        &app,
        "extensions",
        &id,
        json!({"dnd": false, "voicemail_enabled": false,
               "forwarding": {"always": {"enabled": false}, "not_registered": {"enabled": false}}}),
    )
    .await;
    assert_eq!(dial_string(&app).await, "error/user_not_registered");
    // PUT /me/presence with DND is the same switch: via the linked user.
    let email = format!("alice@{SIP}");
    let user = crate::users::create_user(&app, &a.admin, &a.domain, &email, &["member"]).await;
    a.patch(&app, "extensions", &id, json!({"user_id": user}))
        .await;
    let token = crate::users::token_of(&app, &email).await;
    let (status, body) = call(
        &app,
        &token,
        Method::PUT,
        "/api/v1/me/presence",
        Some(json!({"domain_id": a.domain, "status": "dnd"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(dial_string(&app).await, "error/user_busy");
}

async fn dial_string(app: &TestApp) -> String {
    the_user(&ask(app, user_call("201")).await, "201").params["dial-string"].clone()
}

async fn gateways_bare_domains_groups_and_message_count(app: TestApp) {
    let a = acme(&app).await;
    let (_, _) = domain_with_admin_named(&app, &a.admin, "globex.example.net").await;
    let alice = a.alice(&app, json!({"call_group": "Sales"})).await;
    a.create(
        &app,
        "extensions",
        json!({"number": "202", "display_name": "Bob", "call_group": "sales"}),
    )
    .await;
    a.create(
        &app,
        "extensions",
        json!({"number": "203", "display_name": "Carol", "call_group": "Support"}),
    )
    .await;
    let phone = a.desk(&app, &alice).await;

    let doc = ask(&app, fixture("directory-purpose-gateways", &[])).await;
    assert_eq!(domain_names(&doc), [SIP, "globex.example.net"]);
    assert!(users(&doc).is_empty(), "gateways carry no users");
    let doc = ask(
        &app,
        fixture("directory-purpose-gateways-profile-external", &[]),
    )
    .await;
    assert_eq!(domain_names(&doc).len(), 2);

    let doc = ask(&app, fixture("directory-bare-domain", &[])).await;
    assert_eq!(domain_names(&doc), [SIP]);
    assert!(users(&doc).is_empty());
    assert!(is_not_found(
        &ask(&app, fixture("directory-bare-domain-unknown", &[])).await
    ));
    assert!(is_not_found(
        &ask(&app, fixture("directory-purpose-network-list", &[])).await
    ));

    // mod_voicemail's MWI lookup after a registration: the complete device user.
    let user = sip_user(&phone);
    let mwi = the_user(
        &ask(&app, fixture("directory-message-count", &[("user", &user)])).await,
        &user,
    );
    assert_eq!(mwi.params["mwi-account"], format!("201@{SIP}"));
    // mod_voicemail's lookup of the box a message is moved to (`voicemail_inject`,
    // `purpose=publish-vm`): the Extension's user; every box at once (`_all_`) is not served.
    let inject = the_user(
        &ask(&app, fixture("directory-publish-vm", &[])).await,
        "201",
    );
    assert_eq!(inject.params["mwi-account"], format!("201@{SIP}"));
    assert!(is_not_found(
        &ask(&app, fixture("directory-publish-vm", &[("user", "_all_")])).await
    ));

    // group_call: the group's Extensions, complete, in number order, case-insensitively.
    let group_call = fixture(
        "directory-user_call",
        &[
            ("action", "group_call"),
            ("group_name", "SALES"),
            ("group", "SALES"),
        ],
    );
    let doc = ask(&app, group_call).await;
    let parsed = parse(&doc);
    let group = parsed
        .descendants()
        .find(|n| n.has_tag_name("group"))
        .unwrap();
    assert_eq!(
        group.attribute("name"),
        Some("sales"),
        "call groups are lower-case"
    );
    let ids: Vec<&str> = group
        .descendants()
        .filter(|n| n.has_tag_name("user"))
        .filter_map(|n| n.attribute("id"))
        .collect();
    assert_eq!(ids, ["201", "202"]);
    assert!(users(&doc)["202"].params.contains_key("dial-string"));
    let none = fixture(
        "directory-user_call",
        &[("action", "group_call"), ("group_name", "nobody")],
    );
    assert!(is_not_found(&ask(&app, none).await));

    // /metrics counts the answers by kind and the size of the compiled view.
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let value = |line: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(line))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {line} in {metrics}"))
    };
    assert_eq!(
        value("switchboard_directory_users "),
        4.0,
        "201, 202, 203 and the desk"
    );
    assert_eq!(value("switchboard_directory_domains "), 2.0);
    assert_eq!(
        value("switchboard_xml_curl_answers_total{kind=\"group\"}"),
        1.0
    );
    assert_eq!(
        value("switchboard_xml_curl_answers_total{kind=\"gateways\"}"),
        2.0
    );
    assert_eq!(
        value("switchboard_xml_curl_answers_total{kind=\"user\"}"),
        2.0,
        "the MWI lookup and the box a message moves to"
    );
    assert!(value("switchboard_xml_curl_answers_total{kind=\"not_found\"}") >= 4.0);
}

async fn domain_with_admin_named(app: &TestApp, token: &str, sip: &str) -> (String, String) {
    (
        crate::users::create_domain(app, token, sip).await,
        token.to_owned(),
    )
}

async fn disabled_domains_devices_and_extensions_are_not_found(app: TestApp) {
    let a = acme(&app).await;
    let alice = a.alice(&app, json!({})).await;
    let phone = a.desk(&app, &alice).await;
    let user = sip_user(&phone);
    assert!(!is_not_found(&ask(&app, sip_auth(&user)).await));

    a.patch(&app, "devices", &id_of(&phone), json!({"enabled": false}))
        .await;
    assert!(is_not_found(&ask(&app, sip_auth(&user)).await));
    a.patch(&app, "devices", &id_of(&phone), json!({"enabled": true}))
        .await;
    assert!(!is_not_found(&ask(&app, sip_auth(&user)).await));

    a.patch(
        &app,
        "extensions",
        &id_of(&alice),
        json!({"enabled": false}),
    )
    .await;
    assert!(is_not_found(&ask(&app, user_call("201")).await));
    let u = the_user(&ask(&app, sip_auth(&user)).await, &user);
    assert_eq!(
        u.variables["user_context"], "switchboard-logged-out",
        "a fixed phone without an enabled owner keeps emergency calls only"
    );
    a.patch(&app, "extensions", &id_of(&alice), json!({"enabled": true}))
        .await;

    // A disabled Domain answers nothing, and leaves the gateways list.
    let (status, body) = call(
        &app,
        &a.admin,
        Method::PATCH,
        &format!("/api/v1/domains/{}", a.domain),
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(is_not_found(&ask(&app, sip_auth(&user)).await));
    assert!(is_not_found(&ask(&app, user_call("201")).await));
    assert!(is_not_found(
        &ask(&app, fixture("directory-bare-domain", &[])).await
    ));
    let gateways = ask(&app, fixture("directory-purpose-gateways", &[])).await;
    assert!(domain_names(&gateways).is_empty());

    // Deleted: gone as well.
    let (status, body) = call(
        &app,
        &a.admin,
        Method::DELETE,
        &format!("/api/v1/domains/{}?force=true", a.domain),
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    assert!(is_not_found(&ask(&app, sip_auth(&user)).await));
}

/// Several clients change phones of one Domain at once while lookups of it keep coming: each
/// recompile of the Domain runs alone (the later read stays), a mark that arrives while it
/// reads keeps the new answer stale, and so every lookup made after a change's 200 answers
/// with that change, whatever else is being recompiled meanwhile.
async fn parallel_changes_are_each_seen_by_the_next_lookup(app: TestApp) {
    let a = acme(&app).await;
    let alice = a.alice(&app, json!({})).await;
    let mut phones = Vec::new();
    for _ in 0..6 {
        let phone = a.desk(&app, &alice).await;
        phones.push((id_of(&phone), sip_user(&phone)));
    }
    for round in 0..4 {
        let enabled = round % 2 == 1;
        let changes = phones.iter().map(|(id, user)| {
            let (app, a) = (&app, &a);
            async move {
                a.patch(app, "devices", id, json!({ "enabled": enabled }))
                    .await;
                let doc = ask(app, sip_auth(user)).await;
                assert_eq!(
                    is_not_found(&doc),
                    !enabled,
                    "round {round}: {user} right after its change: {doc}"
                );
            }
        });
        // Lookups of the Domain's other user alongside, while it is being recompiled.
        let lookups = (0..12).map(|_| async {
            assert!(!is_not_found(&ask(&app, user_call("201")).await));
        });
        futures_util::future::join(
            futures_util::future::join_all(changes),
            futures_util::future::join_all(lookups),
        )
        .await;
        for (_, user) in &phones {
            assert_eq!(is_not_found(&ask(&app, sip_auth(user)).await), !enabled);
        }
    }
}

/// `switchboard_directory_applied_in_place_total` from `/metrics`.
async fn applied_in_place(app: &TestApp) -> f64 {
    let metrics = app.get("/metrics").await.text().await.unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("switchboard_directory_applied_in_place_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no applied-in-place count in {metrics}"))
}

/// Every answer a change to these phones can reach: their users, Alice's and Bob's users, and
/// what dialling 201 and 202 from `desk` does.
async fn phone_answers(app: &TestApp, phones: &[String], desk: &str) -> Vec<String> {
    let mut out = Vec::new();
    for user in phones.iter().map(String::as_str).chain(["201", "202"]) {
        out.push(ask(app, sip_auth(user)).await);
    }
    for dest in ["201", "202"] {
        out.push(ask(app, dial_from(desk, dest, SIP)).await);
    }
    out
}

/// A change to fixed phones (moved to another owner, disabled, enabled, created) is applied to
/// the compiled Domain in place, reading those phones and the Extensions they touch: every
/// answer that names them changes with the very next lookup, and is what the Domain read whole
/// answers. A hot-desk phone's change reaches further (its session, its logged-out mode): the
/// Domain is read whole.
async fn a_change_to_phones_is_applied_in_place_as_a_whole_read_would_answer(app: TestApp) {
    let a = acme(&app).await;
    let alice = a.alice(&app, json!({})).await;
    let bob = a
        .create(
            &app,
            "extensions",
            json!({"number": "202", "display_name": "Bob Berg", "pin": PIN, "hotdesk_allowed": true}),
        )
        .await;
    let desk = a.desk(&app, &alice).await;
    let other = a.desk(&app, &alice).await;
    let roaming = a
        .create(
            &app,
            "devices",
            json!({"label": "Roaming", "mode": "hotdesk"}),
        )
        .await;
    let desk_id = id_of(&desk);
    let phones = [sip_user(&desk), sip_user(&other), sip_user(&roaming)];
    // Creating an Extension makes the next recompile read the Domain whole.
    let read_whole = |n: u32| {
        let (app, a) = (&app, &a);
        async move {
            a.create(
                app,
                "extensions",
                json!({"number": format!("29{n}"), "display_name": "Nobody", "pin": PIN}),
            )
            .await;
        }
    };
    // Looked up once: what was created so far is compiled (and not counted below).
    assert!(!is_not_found(&ask(&app, sip_auth(&phones[2])).await));
    let started = applied_in_place(&app).await;

    // The desk moves to Bob: its identity and both people's dial strings change.
    a.patch(
        &app,
        "devices",
        &desk_id,
        json!({"owner_extension_id": bob["id"]}),
    )
    .await;
    let moved = phone_answers(&app, &phones, &desk_id).await;
    assert_eq!(
        the_user(&moved[0], &phones[0]).variables["switchboard_extension"],
        "202"
    );
    let alice_rings = the_user(&moved[3], "201").params["dial-string"].clone();
    let bob_rings = the_user(&moved[4], "202").params["dial-string"].clone();
    assert!(
        !alice_rings.contains(&phones[0]) && alice_rings.contains(&phones[1]),
        "{alice_rings}"
    );
    assert!(bob_rings.contains(&phones[0]), "{bob_rings}");
    assert_eq!(
        applied_in_place(&app).await,
        started + 1.0,
        "applied in place"
    );
    read_whole(1).await;
    assert_eq!(
        phone_answers(&app, &phones, &desk_id).await,
        moved,
        "as the Domain read whole answers"
    );

    // Disabled: not found, and rung by nobody; enabled again: back as it was.
    a.patch(&app, "devices", &desk_id, json!({"enabled": false}))
        .await;
    let disabled = phone_answers(&app, &phones, &desk_id).await;
    assert!(is_not_found(&disabled[0]));
    assert!(!the_user(&disabled[4], "202").params["dial-string"].contains(&phones[0]));
    read_whole(2).await;
    assert_eq!(phone_answers(&app, &phones, &desk_id).await, disabled);
    a.patch(&app, "devices", &desk_id, json!({"enabled": true}))
        .await;
    assert_eq!(phone_answers(&app, &phones, &desk_id).await, moved);
    assert_eq!(applied_in_place(&app).await, started + 3.0);

    // A new phone of Alice's rings with her at once.
    let third = a.desk(&app, &alice).await;
    let rings = the_user(&ask(&app, sip_auth("201")).await, "201").params["dial-string"].clone();
    assert!(rings.contains(&sip_user(&third)), "{rings}");
    assert_eq!(applied_in_place(&app).await, started + 4.0);

    // A hot-desk phone's change is read whole, and seen by the next lookup all the same.
    a.patch(&app, "devices", &id_of(&roaming), json!({"label": "Lobby"}))
        .await;
    let lobby = ask(&app, sip_auth(&phones[2])).await;
    assert!(!is_not_found(&lobby), "{lobby}");
    assert_eq!(applied_in_place(&app).await, started + 4.0, "read whole");
}

/// Changes to many Domains at once (a steady stream across tenants): a lookup that spans
/// Domains waits while every stale one is recompiled (a few at a time), and each comes out as
/// its own rows say; a Domain marked stale that does not exist is no Domain at all; when the
/// database cannot be read, every Domain keeps its last good answer and is read again later.
async fn changes_to_many_domains_at_once_are_each_seen(app: TestApp) {
    use sea_orm::ConnectionTrait;
    use switchboard_domain::events::{ChangeEvent, ChangeKind};

    let a = acme(&app).await;
    let mut tenants = vec![(a.domain.clone(), SIP.to_owned())];
    for i in 0..5 {
        let sip = format!("tenant{i}.example.net");
        tenants.push((create_domain(&app, &a.admin, &sip).await, sip));
    }
    // One Extension with a desk phone in each, Extension numbers differing by tenant.
    let mut phones = Vec::new();
    for (i, (domain, sip)) in tenants.iter().enumerate() {
        let number = format!("2{i:02}");
        let ext = create(
            &app,
            &a.admin,
            domain,
            "extensions",
            json!({"number": number, "display_name": format!("Person {i}")}),
        )
        .await;
        let phone = create(
            &app,
            &a.admin,
            domain,
            "devices",
            json!({"label": "Desk", "mode": "fixed", "owner_extension_id": ext["id"]}),
        )
        .await;
        phones.push((sip.clone(), sip_user(&phone)));
    }
    let found = |sip: &str, user: &str| {
        let body = sip_auth(user).replace(SIP, sip);
        let app = &app;
        async move { !is_not_found(&ask(app, body).await) }
    };
    for (sip, user) in &phones {
        assert!(found(sip, user).await, "{user}@{sip} before the changes");
    }
    let publish_all = |ids: Vec<uuid::Uuid>| {
        app.events.publish(ids.into_iter().map(|id| {
            ChangeEvent::new(
                id,
                SIP,
                ChangeKind::DeviceUpdated,
                uuid::Uuid::new_v4(),
                chrono::Utc::now(),
            )
        }))
    };
    let ids: Vec<uuid::Uuid> = tenants.iter().map(|(d, _)| d.parse().unwrap()).collect();

    // Every phone disabled behind the API's back, then every Domain (and one that does not
    // exist) announced at once; a lookup that spans Domains waits for the refresh.
    app.db
        .execute_unprepared("UPDATE devices SET enabled = false")
        .await
        .unwrap();
    let mut announced = ids.clone();
    announced.push(uuid::Uuid::new_v4());
    publish_all(announced);
    let gateways = ask(&app, fixture("directory-purpose-gateways", &[])).await;
    let mut names = domain_names(&gateways);
    names.sort();
    let mut expected: Vec<String> = tenants.iter().map(|(_, sip)| sip.clone()).collect();
    expected.sort();
    assert_eq!(names, expected, "no Domain lost, none invented");
    for (sip, user) in &phones {
        assert!(
            !found(sip, user).await,
            "{user}@{sip} after it was disabled"
        );
    }

    // The database cannot be read while every Domain changes again: the last good answers stay.
    app.db
        .execute_unprepared("ALTER TABLE devices RENAME TO devices_away")
        .await
        .unwrap();
    app.db
        .execute_unprepared("UPDATE devices_away SET enabled = true")
        .await
        .unwrap();
    publish_all(ids.clone());
    ask(&app, fixture("directory-purpose-gateways", &[])).await;
    for (sip, user) in &phones {
        assert!(!found(sip, user).await, "{user}@{sip}: the last good view");
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let failures: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("switchboard_directory_recompile_failures_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(
        failures >= ids.len() as f64,
        "each Domain counted: {metrics}"
    );

    // Back: every Domain is read again and answers as its rows say.
    app.db
        .execute_unprepared("ALTER TABLE devices_away RENAME TO devices")
        .await
        .unwrap();
    for (sip, user) in &phones {
        let mut ok = false;
        for _ in 0..100 {
            if found(sip, user).await {
                ok = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(ok, "{user}@{sip} once the database answered again");
    }
}

async fn the_dialplan_serves_feature_codes_and_the_logged_out_context(app: TestApp) {
    let a = acme(&app).await;
    a.send(
        &app,
        Method::PUT,
        "/calling-settings",
        Some(json!({"emergency_numbers": ["112", "911"]})),
    )
    .await;

    // The captured INVITE of d-7f3a to *11 in context acme.example.net.
    let (context, expression, actions) =
        dialplan(&ask(&app, fixture("dialplan-star11-from-d-7f3a", &[])).await);
    assert_eq!(context, SIP);
    assert_eq!(expression, "^\\*11$");
    assert_eq!(
        actions,
        [
            "set switchboard_feature=login",
            "set switchboard_feature_extension=",
            "answer",
            "socket 127.0.0.1:8084 async full"
        ]
    );
    let star = |dest: &str, ctx: &str| {
        fixture(
            "dialplan-star11-from-d-7f3a",
            &[
                ("Caller-Destination-Number", dest),
                ("Caller-Context", ctx),
                ("variable_switchboard_domain", SIP),
            ],
        )
    };
    let (_, expression, actions) = dialplan(&ask(&app, star("*11201", SIP)).await);
    assert_eq!(expression, "^\\*11201$");
    assert_eq!(actions[1], "set switchboard_feature_extension=201");
    let (_, _, actions) = dialplan(&ask(&app, star("*12", SIP)).await);
    assert_eq!(actions[0], "set switchboard_feature=logout");
    let (context, _, actions) = dialplan(&ask(&app, star("*13", "switchboard-logged-out")).await);
    assert_eq!(context, "switchboard-logged-out");
    assert_eq!(actions[0], "set switchboard_feature=toggle");

    // A number nothing has, in the Domain's own context, is unallocated (the captured 202,
    // which a FreeSWITCH without switchboard's dialplan answered 404 "not found").
    let (context, expression, actions) =
        dialplan(&ask(&app, fixture("dialplan-not-found-202", &[])).await);
    assert_eq!((context.as_str(), expression.as_str()), (SIP, "^202$"));
    assert_eq!(actions, ["hangup UNALLOCATED_NUMBER"]);
    // The Domain's emergency numbers stay with the operator's dialplan.
    assert!(is_not_found(&ask(&app, star("112", SIP)).await));

    // Logged out: emergency numbers go through with the place's caller ID ...
    let emergency = fixture(
        "dialplan-star11-from-d-7f3a",
        &[
            ("Caller-Destination-Number", "112"),
            ("Caller-Context", "switchboard-logged-out"),
            ("variable_switchboard_domain", SIP),
            ("variable_emergency_caller_id_name", "Acme HQ 2F"),
            ("variable_emergency_caller_id_number", "+4930111"),
        ],
    );
    let (context, expression, actions) = dialplan(&ask(&app, emergency).await);
    assert_eq!(
        (context.as_str(), expression.as_str()),
        ("switchboard-logged-out", "^112$")
    );
    assert_eq!(
        actions,
        [
            "set effective_caller_id_name=Acme HQ 2F",
            "set outbound_caller_id_name=Acme HQ 2F",
            "set effective_caller_id_number=+4930111",
            "set outbound_caller_id_number=+4930111",
            "set switchboard_emergency=true",
            &format!("transfer 112 XML {SIP}"),
        ]
    );
    // ... everything else is barred.
    let (_, _, actions) = dialplan(&ask(&app, star("202", "switchboard-logged-out")).await);
    assert_eq!(
        actions,
        [
            "set switchboard_barred=logged_out",
            "hangup OUTGOING_CALL_BARRED"
        ]
    );
    // 999 is not one of this Domain's emergency numbers any more.
    let (_, _, actions) = dialplan(&ask(&app, star("999", "switchboard-logged-out")).await);
    assert_eq!(actions[1], "hangup OUTGOING_CALL_BARRED");

    // The voicemail outcome of our dial strings.
    a.alice(&app, json!({})).await;
    let vm = star(&format!("201@{SIP}"), "switchboard-voicemail");
    let (context, _, actions) = dialplan(&ask(&app, vm).await);
    assert_eq!(context, "switchboard-voicemail");
    // Nothing registered: the box's unavailable greeting when it has one.
    assert_eq!(actions, voicemail_with_greeting(2));
    let vm = star(&format!("299@{SIP}"), "switchboard-voicemail");
    assert!(is_not_found(&ask(&app, vm).await), "no such mailbox");

    // A channel of an unknown Domain gets nothing.
    let stranger = fixture(
        "dialplan-star11-from-d-7f3a",
        &[
            ("Caller-Context", "other.example.org"),
            ("variable_domain_name", "other.example.org"),
        ],
    );
    assert!(is_not_found(&ask(&app, stranger).await));
}

async fn the_domain_context_rings_extensions_and_applies_their_outcomes(app: TestApp) {
    let a = acme(&app).await;
    let alice = a
        .alice(
            &app,
            json!({"ring_timeout_secs": 12,
                   "forwarding": {"busy": {"enabled": true, "destination": "202"}}}),
        )
        .await;
    let desk = a
        .create(
            &app,
            "devices",
            json!({"label": "Alice's desk", "mode": "fixed", "owner_extension_id": alice["id"]}),
        )
        .await;
    let bob = a
        .create(
            &app,
            "extensions",
            json!({"number": "202", "display_name": "Bob", "voicemail_enabled": false}),
        )
        .await;
    let dial = |dest: &str, extra: &[(&str, &str)]| {
        let mut set = vec![
            ("Caller-Destination-Number", dest),
            ("Caller-Context", SIP),
            ("variable_switchboard_domain", SIP),
        ];
        set.extend_from_slice(extra);
        fixture("dialplan-not-found-202", &set)
    };

    // 201 rings its ring plan, then asks for the outcome of the cause.
    let (context, expression, actions) = dialplan(&ask(&app, dial("201", &[])).await);
    assert_eq!((context.as_str(), expression.as_str()), (SIP, "^201$"));
    assert_eq!(actions.len(), 6, "{actions:#?}");
    assert_eq!(actions[0], "set switchboard_called_extension=201");
    assert_eq!(
        actions[1],
        format!("set switchboard_callee_extension_id={}", id_of(&alice))
    );
    assert_eq!(actions[2], "set continue_on_fail=true");
    assert_eq!(actions[3], "set hangup_after_bridge=true");
    let bridge = &actions[4];
    assert!(bridge.starts_with("bridge {"), "{bridge}");
    assert!(bridge.contains("originate_timeout=12"), "{bridge}");
    assert!(!bridge.contains("call_timeout"), "{bridge}");
    assert!(
        bridge.contains(&format!("${{sofia_contact(*/{}@{SIP})}}", sip_user(&desk))),
        "{bridge}"
    );
    assert_eq!(
        actions[5],
        format!("transfer switchboard-outcome-${{originate_disposition}} XML {SIP}")
    );

    // The outcomes of 201 by cause: busy forwards to 202, no answer goes to voicemail.
    let outcome = |cause: &str, hops: &str| {
        dial(
            &format!("switchboard-outcome-{cause}"),
            &[
                ("variable_switchboard_called_extension", "201"),
                ("variable_switchboard_forward_hops", hops),
            ],
        )
    };
    let (_, expression, actions) = dialplan(&ask(&app, outcome("USER_BUSY", "")).await);
    assert_eq!(expression, "^switchboard\\-outcome\\-USER_BUSY$");
    assert_eq!(
        actions,
        [
            "set switchboard_forward_hops=1",
            &format!(
                "set switchboard_forwarded_by={}",
                alice["id"].as_str().unwrap()
            ),
            &format!("transfer 202 XML {SIP}")
        ]
    );
    let (_, _, actions) = dialplan(&ask(&app, outcome("NO_ANSWER", "")).await);
    assert_eq!(actions, voicemail_with_greeting(2));
    let (_, _, actions) = dialplan(&ask(&app, outcome("USER_NOT_REGISTERED", "")).await);
    assert_eq!(actions, voicemail_with_greeting(2));
    let (_, _, actions) = dialplan(&ask(&app, outcome("ORIGINATOR_CANCEL", "")).await);
    assert_eq!(actions, ["hangup"]);
    // The hop bound: a call already forwarded five times is ended.
    let (_, _, actions) = dialplan(&ask(&app, outcome("USER_BUSY", "5")).await);
    assert_eq!(
        actions,
        [
            "set sip_ignore_remote_cause=true",
            "set switchboard_refused=forward_hops_5",
            "hangup EXCHANGE_ROUTING_ERROR"
        ]
    );
    // An outcome lookup dialled by hand (without our variable) is no number.
    let (_, _, actions) = dialplan(&ask(&app, dial("switchboard-outcome-USER_BUSY", &[])).await);
    assert_eq!(actions, ["hangup UNALLOCATED_NUMBER"]);

    // 202 has nothing bound and no voicemail: not registered, at once.
    let (_, _, actions) = dialplan(&ask(&app, dial("202", &[])).await);
    assert_eq!(
        actions,
        [
            "set sip_ignore_remote_cause=true",
            "hangup USER_NOT_REGISTERED"
        ]
    );

    // DND: the busy outcome (forward to 202), recompiled as soon as it is switched on.
    a.patch(
        &app,
        "extensions",
        alice["id"].as_str().unwrap(),
        json!({"dnd": true}),
    )
    .await;
    let (_, _, actions) = dialplan(&ask(&app, dial("201", &[])).await);
    assert_eq!(
        actions,
        [
            "set switchboard_forward_hops=1",
            &format!(
                "set switchboard_forwarded_by={}",
                alice["id"].as_str().unwrap()
            ),
            &format!("transfer 202 XML {SIP}")
        ]
    );
    // A forward to a number that is no Extension is dialled in the Domain's context as Bob
    // (through the Outbound Routes: with none, it is unallocated there).
    a.patch(
        &app,
        "extensions",
        bob["id"].as_str().unwrap(),
        json!({"forwarding": {"always": {"enabled": true, "destination": "+4930999"}}}),
    )
    .await;
    let (_, _, actions) = dialplan(&ask(&app, dial("202", &[])).await);
    assert_eq!(
        actions,
        [
            "set switchboard_forward_hops=1",
            &format!(
                "set switchboard_forwarded_by={}",
                bob["id"].as_str().unwrap()
            ),
            &format!("transfer +4930999 XML {SIP}")
        ]
    );
    let bob_id = bob["id"].as_str().unwrap().to_owned();
    let (_, _, actions) = dialplan(
        &ask(
            &app,
            dial(
                "+4930999",
                &[("variable_switchboard_forwarded_by", bob_id.as_str())],
            ),
        )
        .await,
    );
    assert_eq!(actions, ["hangup UNALLOCATED_NUMBER"]);

    // Another Domain's channel gets nothing from this Domain's context.
    let (other, _) = domain_with_admin(&app, "other.example.org").await;
    assert!(!other.is_empty());
    let foreign = fixture(
        "dialplan-not-found-202",
        &[
            ("Caller-Destination-Number", "201"),
            ("Caller-Context", SIP),
            ("variable_switchboard_domain", "other.example.org"),
            ("variable_domain_name", "other.example.org"),
        ],
    );
    assert!(is_not_found(&ask(&app, foreign).await));
}

async fn xml_injection_in_every_text_field_comes_back_escaped(app: TestApp) {
    let a = acme(&app).await;
    let evil = r#"Al"ice <b>&amp; 'co' </variable><user id="x">"#;
    let alice = a
        .create(
            &app,
            "extensions",
            json!({"number": "201", "display_name": evil, "internal_caller_id_name": evil,
                   "outbound_caller_id_name": evil, "emergency_caller_id_name": evil}),
        )
        .await;
    let location = a
        .create(
            &app,
            "locations",
            json!({"name": evil, "emergency_caller_id_name": evil}),
        )
        .await;
    let phone = a
        .create(
            &app,
            "devices",
            json!({"label": evil, "mode": "fixed", "owner_extension_id": alice["id"],
                   "location_id": location["id"], "emergency_caller_id_name": evil}),
        )
        .await;
    let user = sip_user(&phone);
    let u = the_user(&ask(&app, sip_auth(&user)).await, &user);
    assert_eq!(u.variables["effective_caller_id_name"], evil);
    assert_eq!(u.variables["outbound_caller_id_name"], evil);
    assert_eq!(u.variables["emergency_caller_id_name"], evil);
    // In the dial string the name is made safe for FreeSWITCH's {…} syntax too.
    a.create(
        &app,
        "devices",
        json!({"label": "Second", "mode": "fixed", "owner_extension_id": alice["id"]}),
    )
    .await;
    let ext = the_user(&ask(&app, user_call("201")).await, "201");
    let dial = &ext.params["dial-string"];
    assert!(
        dial.contains("callee_id_name='Al\"ice b&amp; co /variableuser id=\"x\"'"),
        "{dial}"
    );
    assert_eq!(dial.matches('{').count(), dial.matches('}').count());
    // Account codes and call groups are tokens: the API refuses markup in them outright.
    let (status, _) = call(
        &app,
        &a.admin,
        Method::POST,
        &format!("/api/v1/domains/{}/extensions", a.domain),
        Some(json!({"number": "202", "display_name": "B", "account_code": "a&b<c>"})),
    )
    .await;
    assert_eq!(status, 422);
}

async fn malformed_and_unknown_requests_get_not_found_never_a_500(app: TestApp) {
    let a = acme(&app).await;
    a.alice(&app, json!({})).await;
    let bodies: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"garbage".to_vec(),
        b"&&&===&%%%".to_vec(),
        b"section=directory".to_vec(),
        b"section=directory&tag_name=domain&key_name=name&key_value=".to_vec(),
        b"section=languages&key_value=en".to_vec(),
        b"section=configuration&key_value=sofia.conf".to_vec(),
        b"section=dialplan".to_vec(),
        b"section=directory&domain=acme.example.net&user=nosuchuser".to_vec(),
        b"section=directory&domain=acme.example.net&action=sip_auth".to_vec(),
        b"section=directory&domain=acme.example.net&user=201&action=reverse-auth-lookup".to_vec(),
        vec![0xff, 0xfe, 0x00, b'=', 0x80, b'&', b's'],
        format!("section=directory&domain={SIP}&user={}", "2".repeat(5000)).into_bytes(),
    ];
    for body in bodies {
        let response = app
            .request(Method::POST, "/freeswitch/xml")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 200, "{:?}: {text}", String::from_utf8_lossy(&body));
        assert!(
            is_not_found(&text),
            "{:?}: {text}",
            String::from_utf8_lossy(&body)
        );
    }
    // Too large: 413, plainly.
    let huge = format!("{}&x={}", sip_auth("201"), "a".repeat(70 * 1024));
    let response = post(&app, huge).await;
    assert_eq!(response.status(), 413);
    assert_eq!(refusals(&app, "too_large").await, 1.0);
    // Other methods are not served.
    let response = app.get("/freeswitch/xml").await;
    assert_eq!(response.status(), 405);
    // The server is still fine.
    assert!(!is_not_found(&ask(&app, user_call("201")).await));
}

async fn credentials_are_checked(app: TestApp) {
    let a = acme(&app).await;
    a.alice(&app, json!({})).await;
    let with = |auth: Option<String>| {
        let mut request = app
            .request(Method::POST, "/freeswitch/xml")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(user_call("201"));
        if let Some(auth) = auth {
            request = request.header(AUTHORIZATION, auth);
        }
        request.send()
    };
    let basic = |pair: &str| {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    };
    let response = with(None).await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Basic ")),
    );
    for wrong in [
        basic("freeswitch:wrong-password-here"),
        basic(&format!("someone:{XML_CURL_PASSWORD}")),
        basic("freeswitch"),
        "Basic !!!not-base64".to_owned(),
        format!("Bearer {XML_CURL_PASSWORD}"),
    ] {
        assert_eq!(
            with(Some(wrong.clone())).await.unwrap().status(),
            401,
            "{wrong}"
        );
    }
    // Refusals are outside the API's HTTP metrics; the directory counts them.
    assert_eq!(refusals(&app, "credentials").await, 6.0);
    let response = with(Some(basic(&format!("freeswitch:{XML_CURL_PASSWORD}"))))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert_eq!(
        the_user(&text, "201").variables["effective_caller_id_number"],
        "201"
    );
}

async fn an_address_outside_the_allow_list_is_refused(app: TestApp) {
    let a = acme(&app).await;
    a.alice(&app, json!({})).await;
    let response = post(&app, user_call("201")).await;
    assert_eq!(response.status(), 403);
    let text = response.text().await.unwrap();
    assert!(!text.contains("201"), "nothing leaks: {text}");
    assert_eq!(refusals(&app, "address").await, 1.0);
}

/// `switchboard_xml_curl_refusals_total{reason}` from `/metrics` (0 when not yet counted).
async fn refusals(app: &TestApp, reason: &str) -> f64 {
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let prefix = format!("switchboard_xml_curl_refusals_total{{reason=\"{reason}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0.0, |v| v.parse().unwrap())
}

async fn cacheable_follows_the_configuration(app: TestApp) {
    let a = acme(&app).await;
    a.alice(&app, json!({})).await;
    let u = the_user(&ask(&app, user_call("201")).await, "201");
    assert!(!u.attributes.contains_key("cacheable"), "0 = not cached");
}

async fn caller_name(app: &TestApp) -> String {
    let doc = ask(app, user_call("201")).await;
    the_user(&doc, "201").variables["effective_caller_id_name"].clone()
}

async fn the_last_good_view_answers_while_the_database_cannot_be_read(app: TestApp) {
    use sea_orm::ConnectionTrait;
    use switchboard_domain::events::{ChangeEvent, ChangeKind};

    let a = acme(&app).await;
    let alice = a.alice(&app, json!({})).await;
    assert_eq!(caller_name(&app).await, "Alice Anders");

    // The Extensions table goes away (as if the database failed), then a change is announced.
    app.db
        .execute_unprepared("ALTER TABLE extensions RENAME TO extensions_away")
        .await
        .unwrap();
    let domain_id = a.domain.parse().unwrap();
    app.events.publish([ChangeEvent::new(
        domain_id,
        SIP,
        ChangeKind::ExtensionUpdated,
        id_of(&alice).parse().unwrap(),
        chrono::Utc::now(),
    )
    .refresh(["201".to_owned()])]);
    // FreeSWITCH still gets the last good answer, not a 500 and not "not found".
    assert_eq!(caller_name(&app).await, "Alice Anders");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("switchboard_directory_recompile_failures_total ")
                && !l.ends_with(" 0")
        ),
        "{metrics}"
    );

    // The database comes back with a change made meanwhile: the retry picks it up.
    app.db
        .execute_unprepared("UPDATE extensions_away SET display_name = 'Alicia Anders'")
        .await
        .unwrap();
    app.db
        .execute_unprepared("ALTER TABLE extensions_away RENAME TO extensions")
        .await
        .unwrap();
    let mut seen = String::new();
    for _ in 0..100 {
        seen = caller_name(&app).await;
        if seen == "Alicia Anders" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        seen, "Alicia Anders",
        "recompiled once the database answered again"
    );
}

// ---------------------------------------------------------------------------------------------
// Outbound Routes, emergency calls, the public context (issue: calls that work)
// ---------------------------------------------------------------------------------------------

/// A platform Number assigned to the Domain, pointed at `destination`.
async fn number(app: &TestApp, a: &Acme, e164: &str, destination: Value) -> Value {
    let (status, created) = call(
        app,
        &a.admin,
        Method::POST,
        "/api/v1/numbers",
        Some(json!({"number": e164, "domain_id": a.domain, "destination": destination})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    created
}

/// Two gateways (127.0.0.2 and 127.0.0.3), a national and an international route, Germany's
/// numbering, and a default caller ID.
async fn trunks(app: &TestApp, a: &Acme) -> (Value, Value) {
    number(app, a, "+4930100000", Value::Null).await;
    a.send(
        app,
        Method::PUT,
        "/calling-settings",
        Some(
            json!({"country_code": "49", "outbound_caller_id_number": "+4930100000",
                    "outbound_caller_id_name": "Acme"}),
        ),
    )
    .await;
    let first = a
        .create(
            app,
            "gateways",
            json!({"name": "first", "proxy": "127.0.0.2:5080"}),
        )
        .await;
    let second = a
        .create(
            app,
            "gateways",
            json!({"name": "second", "proxy": "127.0.0.3:5080", "username": "acme",
                   "password": "carrier-secret"}),
        )
        .await;
    a.create(
        app,
        "outbound-routes",
        json!({"name": "International", "patterns": ["00Z."], "toll_class": "international",
               "gateway_ids": [first["id"]]}),
    )
    .await;
    a.create(
        app,
        "outbound-routes",
        json!({"name": "National", "patterns": ["0Z."], "toll_class": "national",
               "gateway_ids": [first["id"], second["id"]]}),
    )
    .await;
    (first, second)
}

fn dial_from(device: &str, dest: &str, context: &str) -> String {
    fixture(
        "dialplan-not-found-202",
        &[
            ("Caller-Destination-Number", dest),
            ("Caller-Context", context),
            ("Hunt-Destination-Number", dest),
            ("Hunt-Context", context),
            ("variable_switchboard_domain", SIP),
            ("variable_domain_name", SIP),
            ("variable_switchboard_device_id", device),
        ],
    )
}

async fn calls_leave_through_outbound_routes_with_failover_toll_classes_and_caller_ids(
    app: TestApp,
) {
    let a = acme(&app).await;
    let (first, second) = trunks(&app, &a).await;
    let alice = a.alice(&app, json!({})).await;
    let desk = a.desk(&app, &alice).await;
    let desk_id = desk["id"].as_str().unwrap().to_owned();
    let gw = |g: &Value| g["freeswitch_name"].as_str().unwrap().to_owned();

    // Alice's own caller ID is not a Number of the Domain: the Domain's default instead.
    let doc = ask(&app, dial_from(&desk_id, "030999888", SIP)).await;
    let (context, _, actions) = dialplan(&doc);
    assert_eq!(context, SIP);
    let bridges: Vec<&String> = actions
        .iter()
        .filter(|a| a.starts_with("bridge "))
        .collect();
    assert_eq!(
        bridges,
        [
            &format!("bridge sofia/gateway/{}/+4930999888", gw(&first)),
            &format!("bridge sofia/gateway/{}/+4930999888", gw(&second)),
        ],
        "{doc}"
    );
    assert!(
        actions.contains(&"set effective_caller_id_number=+4930100000".to_owned()),
        "{actions:?}"
    );
    assert!(actions.contains(&"set switchboard_outbound_route=National".to_owned()));
    assert!(
        actions
            .iter()
            .any(|a| a.starts_with("set continue_on_fail=")
                && a.contains("NORMAL_TEMPORARY_FAILURE")),
        "{actions:?}"
    );
    assert!(
        !actions.iter().any(|a| a.contains("USER_BUSY")),
        "busy is no failover: {actions:?}"
    );

    // Once the Number is the Domain's, Alice presents it.
    number(
        &app,
        &a,
        "+4930123456",
        json!({"type": "extension", "extension_id": alice["id"]}),
    )
    .await;
    let doc = ask(&app, dial_from(&desk_id, "030999888", SIP)).await;
    let (_, _, actions) = dialplan(&doc);
    assert!(
        actions.contains(&"set effective_caller_id_number=+4930123456".to_owned()),
        "{actions:?}"
    );

    // International is not in Alice's toll classes.
    let doc = ask(&app, dial_from(&desk_id, "0044201234", SIP)).await;
    let (_, _, actions) = dialplan(&doc);
    assert_eq!(
        actions,
        [
            "set switchboard_refused=toll_class",
            "hangup OUTGOING_CALL_BARRED"
        ]
    );
    // Nothing matches: unallocated.
    let doc = ask(&app, dial_from(&desk_id, "555", SIP)).await;
    assert_eq!(dialplan(&doc).2, ["hangup UNALLOCATED_NUMBER"]);

    // The explanation is the same answer, with its reasons.
    let explained = a
        .send(
            &app,
            Method::POST,
            "/calls/explain",
            Some(json!({"device_id": desk_id, "digits": "030999888"})),
        )
        .await;
    let again = ask(&app, dial_from(&desk_id, "030999888", SIP)).await;
    assert_eq!(explained["freeswitch_xml"].as_str(), Some(again.as_str()));
    assert_eq!(explained["outcome"]["action"], "outbound");
    assert_eq!(explained["outcome"]["number"], "+4930999888");
    assert_eq!(explained["outcome"]["caller_id_number"], "+4930123456");
    let names: Vec<&str> = explained["outcome"]["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["first", "second"]);
    let steps: Vec<&str> = explained["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    for want in [
        "caller",
        "context",
        "route",
        "number",
        "toll_class",
        "gateways",
        "caller_id",
    ] {
        assert!(steps.contains(&want), "{want} missing: {explained}");
    }
    let barred = a
        .send(
            &app,
            Method::POST,
            "/calls/explain",
            Some(json!({"device_id": desk_id, "digits": "0044201234"})),
        )
        .await;
    assert_eq!(barred["outcome"]["action"], "refused");
    assert_eq!(barred["outcome"]["cause"], "OUTGOING_CALL_BARRED");

    // A disabled gateway is skipped at once.
    a.patch(
        &app,
        "gateways",
        first["id"].as_str().unwrap(),
        json!({"enabled": false}),
    )
    .await;
    let doc = ask(&app, dial_from(&desk_id, "030999888", SIP)).await;
    let bridges: Vec<String> = dialplan(&doc)
        .2
        .into_iter()
        .filter(|a| a.starts_with("bridge "))
        .collect();
    assert_eq!(
        bridges,
        [format!("bridge sofia/gateway/{}/+4930999888", gw(&second))]
    );
    // Both disabled: the route has no gateway, a temporary failure.
    a.patch(
        &app,
        "gateways",
        second["id"].as_str().unwrap(),
        json!({"enabled": false}),
    )
    .await;
    let doc = ask(&app, dial_from(&desk_id, "030999888", SIP)).await;
    assert_eq!(
        dialplan(&doc).2,
        [
            "set switchboard_refused=no_gateway",
            "hangup NORMAL_TEMPORARY_FAILURE"
        ]
    );
}

async fn emergency_calls_from_a_logged_out_phone_leave_as_the_place_and_reach_the_live_stream(
    app: TestApp,
) {
    let a = acme(&app).await;
    let (first, _) = trunks(&app, &a).await;
    a.create(
        &app,
        "outbound-routes",
        json!({"name": "Emergency", "position": 0, "patterns": ["112", "110"],
               "toll_class": "emergency", "gateway_ids": [first["id"]]}),
    )
    .await;
    let room = a
        .create(
            &app,
            "locations",
            json!({"name": "Room 4.12", "emergency_caller_id_number": "+4930412412",
                   "emergency_caller_id_name": "Acme Room 4.12",
                   "emergency_address": "Main St 1, 4th floor"}),
        )
        .await;
    let hot = a
        .create(
            &app,
            "devices",
            json!({"label": "Hot desk", "mode": "hotdesk", "location_id": room["id"]}),
        )
        .await;
    let hot_id = hot["id"].as_str().unwrap().to_owned();
    let mut bus = app.events.subscribe();

    // A logged-out phone may dial 112: handed to the Domain's context …
    let doc = ask(&app, dial_from(&hot_id, "112", "switchboard-logged-out")).await;
    let (_, _, actions) = dialplan(&doc);
    assert_eq!(
        actions.last().map(String::as_str),
        Some(&*format!("transfer 112 XML {SIP}"))
    );
    // … where it leaves through the emergency route as the place, whatever the toll class.
    let doc = ask(&app, dial_from(&hot_id, "112", SIP)).await;
    let (_, _, actions) = dialplan(&doc);
    assert!(
        actions.contains(&format!(
            "bridge sofia/gateway/{}/112",
            first["freeswitch_name"].as_str().unwrap()
        )),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"set effective_caller_id_number=+4930412412".to_owned()),
        "{actions:?}"
    );
    assert!(actions.contains(&"set switchboard_emergency=true".to_owned()));
    // Anything else from it is barred.
    let doc = ask(
        &app,
        dial_from(&hot_id, "030999888", "switchboard-logged-out"),
    )
    .await;
    assert_eq!(
        dialplan(&doc).2.last().map(String::as_str),
        Some("hangup OUTGOING_CALL_BARRED")
    );

    // The receptionist's screen hears of it.
    let event = loop {
        let e = crate::devices::next_event(&mut bus).await;
        if e.kind == switchboard_domain::events::ChangeKind::CallEmergency {
            break e;
        }
    };
    let detail = event.detail.expect("the call");
    assert_eq!(detail["dialled"], "112");
    assert_eq!(detail["caller_id_number"], "+4930412412");
    assert_eq!(detail["caller"]["device_id"], hot["id"]);
    assert_eq!(detail["caller"]["location"]["name"], "Room 4.12");
    assert_eq!(
        detail["caller"]["location"]["emergency_address"],
        "Main St 1, 4th floor"
    );
    assert_eq!(detail["route"], "Emergency");

    // A DND Extension logged in, with no toll class at all: still out, as the place.
    a.create(
        &app,
        "extensions",
        json!({"number": "207", "display_name": "Carol", "pin": PIN, "hotdesk_allowed": true,
                   "toll_allow": [], "dnd": true}),
    )
    .await;
    a.send(
        &app,
        Method::PUT,
        &format!("/devices/{hot_id}/session"),
        Some(json!({"extension": "207"})),
    )
    .await;
    let doc = ask(&app, dial_from(&hot_id, "112", SIP)).await;
    let (_, _, actions) = dialplan(&doc);
    assert!(
        actions.contains(&"set effective_caller_id_number=+4930412412".to_owned()),
        "{actions:?}"
    );
    let doc = ask(&app, dial_from(&hot_id, "030999888", SIP)).await;
    assert_eq!(
        dialplan(&doc).2.last().map(String::as_str),
        Some("hangup OUTGOING_CALL_BARRED")
    );
}

async fn recording_policies_reach_the_dialplan_and_the_explanation(app: TestApp) {
    let a = acme(&app).await;
    let (first, _) = trunks(&app, &a).await;
    let alice = a
        .alice(&app, json!({"recording": {"outbound": "always"}}))
        .await;
    let desk = a
        .create(
            &app,
            "devices",
            json!({"label": "Alice's desk", "mode": "fixed", "owner_extension_id": alice["id"]}),
        )
        .await;
    let desk_id = desk["id"].as_str().unwrap();
    let bob = a
        .create(
            &app,
            "extensions",
            json!({"number": "202", "display_name": "Bob", "voicemail_enabled": false,
                   "recording": {"inbound": "on_demand"}}),
        )
        .await;
    let bobs_desk = a
        .create(
            &app,
            "devices",
            json!({"label": "Bob's desk", "mode": "fixed", "owner_extension_id": bob["id"]}),
        )
        .await;
    let bobs_desk = bobs_desk["id"].as_str().unwrap();
    let carol = a
        .create(
            &app,
            "extensions",
            json!({"number": "203", "display_name": "Carol", "voicemail_enabled": false}),
        )
        .await;
    a.create(
        &app,
        "devices",
        json!({"label": "Carol's desk", "mode": "fixed", "owner_extension_id": carol["id"]}),
    )
    .await;
    let path = format!("/var/spool/calls/{SIP}/${{strftime(%Y-%m-%d)}}/${{uuid}}.wav");

    // Alice records what she places: from the answer, into the Domain's directory.
    for dialled in ["203", "030999888"] {
        let (_, _, actions) = dialplan(&ask(&app, dial_from(desk_id, dialled, SIP)).await);
        assert_eq!(
            actions[..3],
            [
                format!("set switchboard_recording={path}"),
                "set switchboard_recording_policy=always".to_owned(),
                "set execute_on_answer=record_session ${switchboard_recording}".to_owned(),
            ],
            "{dialled}: {actions:#?}"
        );
    }
    // Bob records what he receives on demand: *2 toggles it, on the caller's leg.
    let (_, _, actions) = dialplan(&ask(&app, dial_from(desk_id, "202", SIP)).await);
    assert_eq!(
        actions[1], "set switchboard_recording_policy=always",
        "Alice's is stronger"
    );
    let (_, _, actions) = dialplan(&ask(&app, dial_from(bobs_desk, "203", SIP)).await);
    assert!(
        !actions.iter().any(|a| a.contains("record")),
        "Bob records only what he receives, Carol nothing: {actions:#?}"
    );
    // A carrier's call for Bob (through the public context, then the Domain's): on demand.
    number(
        &app,
        &a,
        "+4930555202",
        json!({"type": "extension", "extension_id": bob["id"]}),
    )
    .await;
    let inbound = fixture(
        "dialplan-not-found-202",
        &[
            ("Caller-Destination-Number", "202"),
            ("Caller-Context", SIP),
            ("variable_switchboard_domain", SIP),
            ("variable_switchboard_inbound_number", "+4930555202"),
        ],
    );
    let (_, _, actions) = dialplan(&ask(&app, inbound).await);
    assert_eq!(
        actions[..4],
        [
            format!("set switchboard_recording={path}"),
            "set switchboard_recording_policy=on_demand".to_owned(),
            "set RECORD_TOGGLE_ON_REPEAT=true".to_owned(),
            "bind_meta_app 2 ab a record_session::${switchboard_recording}".to_owned(),
        ],
        "{actions:#?}"
    );

    // The explanation gives the same decision, with its reason.
    let explain = |caller: Value| a.send(&app, Method::POST, "/calls/explain", Some(caller));
    let out = explain(json!({"device_id": desk_id, "digits": "030999888"})).await;
    assert_eq!(out["recording"]["policy"], "always", "{out}");
    assert!(
        out["recording"]["reason"]
            .as_str()
            .unwrap()
            .contains("Extension 201 (calling)"),
        "{out}"
    );
    assert!(
        out["freeswitch_xml"]
            .as_str()
            .unwrap()
            .contains("record_session")
    );
    let carrier = explain(json!({"gateway_id": first["id"], "digits": "+4930555202"})).await;
    assert_eq!(carrier["recording"]["policy"], "on_demand", "{carrier}");
    let none = explain(json!({"device_id": bobs_desk, "digits": "203"})).await;
    assert_eq!(none["recording"]["policy"], "never", "{none}");
    let steps: Vec<&str> = none["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert!(steps.contains(&"recording"), "{none}");
}

fn from_carrier(dest: &str, token: Option<&str>, ip: &str) -> String {
    let mut set = vec![
        ("Caller-Destination-Number", dest),
        ("Caller-Context", "public"),
        ("Hunt-Destination-Number", dest),
        ("Hunt-Context", "public"),
        ("variable_sip_network_ip", ip),
        ("variable_switchboard_domain", ""),
        ("variable_domain_name", ""),
    ];
    if let Some(t) = token {
        set.push(("variable_sip_acl_authed_by", "switchboard-carriers"));
        set.push(("variable_sip_acl_token", t));
    }
    fixture("dialplan-not-found-202", &set)
}

async fn the_public_context_takes_calls_for_numbers_only_from_gateways(app: TestApp) {
    let a = acme(&app).await;
    let (first, second) = trunks(&app, &a).await;
    let alice = a.alice(&app, json!({})).await;
    let hundred = number(
        &app,
        &a,
        "+4930555100",
        json!({"type": "extension", "extension_id": alice["id"]}),
    )
    .await;
    number(
        &app,
        &a,
        "+4930555101",
        json!({"type": "voicemail", "extension_id": alice["id"]}),
    )
    .await;
    number(
        &app,
        &a,
        "+4930555102",
        json!({"type": "external", "number": "030777"}),
    )
    .await;
    number(
        &app,
        &a,
        "+4930555103",
        json!({"type": "hang_up", "cause": "busy"}),
    )
    .await;
    let token = format!(
        "{}@carriers.switchboard.invalid",
        first["freeswitch_name"].as_str().unwrap()
    );

    let doc = ask(&app, from_carrier("+4930555100", Some(&token), "127.0.0.2")).await;
    let (context, _, actions) = dialplan(&doc);
    assert_eq!(context, "public");
    assert!(
        actions.contains(&"set switchboard_inbound_number=+4930555100".to_owned()),
        "{actions:?}"
    );
    assert_eq!(
        actions.last().map(String::as_str),
        Some(&*format!("transfer 201 XML {SIP}"))
    );
    // Without the +, as many carriers send it.
    let doc = ask(&app, from_carrier("4930555100", Some(&token), "127.0.0.2")).await;
    assert_eq!(
        dialplan(&doc).2.last().map(String::as_str),
        Some(&*format!("transfer 201 XML {SIP}"))
    );
    // In national format, read with the Domain's numbering (country code 49).
    let doc = ask(&app, from_carrier("030555100", Some(&token), "127.0.0.2")).await;
    assert_eq!(
        dialplan(&doc).2.last().map(String::as_str),
        Some(&*format!("transfer 201 XML {SIP}"))
    );
    let doc = ask(&app, from_carrier("+4930555101", Some(&token), "127.0.0.2")).await;
    assert_eq!(
        dialplan(&doc).2.last().map(String::as_str),
        Some(&*format!("voicemail default {SIP} 201"))
    );
    let doc = ask(&app, from_carrier("+4930555102", Some(&token), "127.0.0.2")).await;
    assert_eq!(
        dialplan(&doc).2.last().map(String::as_str),
        Some(&*format!("transfer 030777 XML {SIP}"))
    );
    let doc = ask(&app, from_carrier("+4930555103", Some(&token), "127.0.0.2")).await;
    assert_eq!(
        dialplan(&doc).2.last().map(String::as_str),
        Some("hangup USER_BUSY")
    );
    let doc = ask(&app, from_carrier("+4930555199", Some(&token), "127.0.0.2")).await;
    assert_eq!(dialplan(&doc).2, ["hangup UNALLOCATED_NUMBER"]);
    // Not from the gateway's address, or without the carriers' ACL: refused.
    let doc = ask(&app, from_carrier("+4930555100", Some(&token), "127.0.0.9")).await;
    assert_eq!(dialplan(&doc).2, ["hangup CALL_REJECTED"]);
    let doc = ask(&app, from_carrier("+4930555100", None, "127.0.0.2")).await;
    assert_eq!(dialplan(&doc).2, ["hangup CALL_REJECTED"]);
    // A Number taken back into the stock no longer reaches the Domain, in any format; given
    // to another Domain, the Domain's own gateway does not bring its calls.
    let (status, _) = call(
        &app,
        &a.admin,
        Method::PATCH,
        &format!("/api/v1/numbers/{}", hundred["id"].as_str().unwrap()),
        Some(json!({"domain_id": null, "destination": null})),
    )
    .await;
    assert_eq!(status, 200);
    for dialled in ["+4930555100", "4930555100", "030555100"] {
        let doc = ask(&app, from_carrier(dialled, Some(&token), "127.0.0.2")).await;
        assert_eq!(dialplan(&doc).2, ["hangup UNALLOCATED_NUMBER"], "{dialled}");
    }
    let other = create_domain(&app, &a.admin, "other.example.net").await;
    let (status, _) = call(
        &app,
        &a.admin,
        Method::PATCH,
        &format!("/api/v1/numbers/{}", hundred["id"].as_str().unwrap()),
        Some(json!({"domain_id": other})),
    )
    .await;
    assert_eq!(status, 200);
    let doc = ask(&app, from_carrier("+4930555100", Some(&token), "127.0.0.2")).await;
    assert_eq!(dialplan(&doc).2, ["hangup CALL_REJECTED"]);

    // An external destination then leaves as the Number, through the routes.
    let forwarded = fixture(
        "dialplan-not-found-202",
        &[
            ("Caller-Destination-Number", "030777"),
            ("Caller-Context", SIP),
            ("variable_switchboard_domain", SIP),
            ("variable_switchboard_inbound_number", "+4930555102"),
        ],
    );
    let (_, _, actions) = dialplan(&ask(&app, forwarded).await);
    assert!(
        actions.contains(&"set effective_caller_id_number=+4930555102".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|a| a.ends_with("/+4930777")),
        "{actions:?}"
    );

    // FreeSWITCH loads the gateways from the directory and lets their addresses in.
    let gateways = ask(&app, fixture("directory-purpose-gateways", &[])).await;
    let parsed = parse(&gateways);
    let loaded: Vec<&str> = parsed
        .descendants()
        .filter(|n| n.has_tag_name("gateway"))
        .filter_map(|n| n.attribute("name"))
        .collect();
    assert!(
        loaded.contains(&first["freeswitch_name"].as_str().unwrap()),
        "{gateways}"
    );
    let second_gw = parsed
        .descendants()
        .find(|n| {
            n.has_tag_name("gateway") && n.attribute("name") == second["freeswitch_name"].as_str()
        })
        .unwrap();
    let params: BTreeMap<String, String> = second_gw
        .children()
        .filter(|n| n.has_tag_name("param"))
        .map(|n| {
            (
                n.attribute("name").unwrap().to_owned(),
                n.attribute("value").unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(params["proxy"], "127.0.0.3:5080");
    assert_eq!(
        params["password"], "carrier-secret",
        "FreeSWITCH needs the plain password"
    );
    assert_eq!(params["context"], "public");
    let acl = ask(
        &app,
        fixture(
            "directory-purpose-network-list",
            &[
                ("domain", "carriers.switchboard.invalid"),
                ("key_value", "carriers.switchboard.invalid"),
            ],
        ),
    )
    .await;
    let acl_doc = parse(&acl);
    let cidrs: Vec<&str> = acl_doc
        .descendants()
        .filter(|n| n.has_tag_name("user"))
        .filter_map(|n| n.attribute("cidr"))
        .collect();
    assert_eq!(cidrs.len(), 2, "{acl}");
    assert!(
        cidrs.contains(&"127.0.0.2/32") && cidrs.contains(&"127.0.0.3/32"),
        "{acl}"
    );
    // The API never shows the password.
    let shown = a
        .send(
            &app,
            Method::GET,
            &format!("/gateways/{}", second["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(shown["has_password"], true);
    assert!(shown.get("password").is_none() && !shown.to_string().contains("carrier-secret"));

    // A carrier sending from more addresses than its proxy's: listed, let in, accepted.
    let from_pool = from_carrier("+4930555103", Some(&token), "10.1.2.3");
    assert_eq!(
        dialplan(&ask(&app, from_pool.clone()).await).2,
        ["hangup CALL_REJECTED"]
    );
    let changed = a
        .patch(
            &app,
            "gateways",
            first["id"].as_str().unwrap(),
            json!({"inbound_addresses": ["10.1.0.0/16", " 127.0.0.7 "]}),
        )
        .await;
    assert_eq!(
        changed["inbound_addresses"],
        json!(["10.1.0.0/16", "127.0.0.7/32"])
    );
    assert_eq!(
        dialplan(&ask(&app, from_pool).await)
            .2
            .last()
            .map(String::as_str),
        Some("hangup USER_BUSY")
    );
    let acl = ask(
        &app,
        fixture(
            "directory-purpose-network-list",
            &[
                ("domain", "carriers.switchboard.invalid"),
                ("key_value", "carriers.switchboard.invalid"),
            ],
        ),
    )
    .await;
    for cidr in ["127.0.0.2/32", "10.1.0.0/16", "127.0.0.7/32"] {
        assert!(acl.contains(&format!("cidr=\"{cidr}\"")), "{cidr}: {acl}");
    }
}
