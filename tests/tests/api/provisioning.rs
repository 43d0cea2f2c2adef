//! Phone provisioning through the real server: phones fetch their files by MAC with digest (or
//! basic) authentication, get the keys of whoever is logged in, and are told to fetch again
//! when that changes. Templates and layouts with their refusals, tenant isolation, the
//! first-boot credential, and a parallel burst of wrong guesses.

use base64::Engine as _;
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use switchboard_tests::provisioning::{fetch_basic, fetch_digest, param, value_of, yealink_keys};
use switchboard_tests::{TestApp, both_databases};

use crate::devices::{create, domain_with_admin, id_of};
use crate::users::call;

both_databases!(
    templates_and_layouts_are_checked_when_saved,
    a_phone_fetches_its_file_with_its_own_credential_and_nothing_else,
    basic_authentication_works_where_it_is_allowed with |c| c.provisioning.allow_basic_without_tls = true,
    the_first_boot_credential_works_only_from_the_domains_networks,
    keys_follow_the_person_and_changes_ask_the_phone_to_fetch_again,
    a_group_says_which_layouts_its_members_may_choose,
    every_vendor_gets_a_file_in_its_own_format,
    parallel_wrong_guesses_are_throttled_and_never_a_500 with |c| c.provisioning.max_failures = 5,
);

const PIN: &str = "4711";

/// A Domain with an admin, Extensions 201 (Alice) and 202 (Bob), and a Yealink T54W hot-desk
/// phone with a MAC.
struct Office {
    domain: String,
    admin: String,
    alice: String,
    bob: String,
    phone: String,
    mac: String,
}

async fn office(app: &TestApp, sip: &str, mac: &str) -> Office {
    let (domain, admin) = domain_with_admin(app, sip).await;
    let alice = id_of(
        &create(
            app,
            &admin,
            &domain,
            "extensions",
            json!({"number": "201", "display_name": "Alice", "pin": PIN, "hotdesk_allowed": true}),
        )
        .await,
    );
    let bob = id_of(
        &create(
            app,
            &admin,
            &domain,
            "extensions",
            json!({"number": "202", "display_name": "Bob", "pin": PIN, "hotdesk_allowed": true}),
        )
        .await,
    );
    let phone = id_of(
        &create(
            app,
            &admin,
            &domain,
            "devices",
            json!({"label": "Desk 1", "mode": "hotdesk", "mac_address": mac,
                   "vendor": "Yealink", "model": "T54W"}),
        )
        .await,
    );
    Office {
        domain,
        admin,
        alice,
        bob,
        phone,
        mac: mac.replace([':', '-', '.'], "").to_lowercase(),
    }
}

impl Office {
    fn path(&self, rest: &str) -> String {
        format!("/api/v1/domains/{}/{rest}", self.domain)
    }

    async fn send(
        &self,
        app: &TestApp,
        method: Method,
        rest: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        call(app, &self.admin, method, &self.path(rest), body).await
    }

    /// Logs an Extension in to the office's phone through the API; the status and answer.
    async fn login(&self, app: &TestApp, body: Value) -> (u16, Value) {
        let path = format!("devices/{}/session", self.phone);
        self.send(app, Method::PUT, &path, Some(body)).await
    }

    /// Logs the office's phone out through the API.
    async fn logout(&self, app: &TestApp) -> u16 {
        let path = format!("devices/{}/session", self.phone);
        self.send(app, Method::DELETE, &path, None).await.0
    }

    /// What the office's phone would get now.
    async fn preview(&self, app: &TestApp) -> Value {
        let path = format!("devices/{}/provisioning", self.phone);
        self.send(app, Method::GET, &path, None).await.1
    }

    async fn credential(&self, app: &TestApp, device: &str) -> (String, String) {
        let (status, c) = self
            .send(
                app,
                Method::GET,
                &format!("devices/{device}/provisioning/credential"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{c}");
        (
            c["username"].as_str().unwrap().to_owned(),
            c["password"].as_str().unwrap().to_owned(),
        )
    }
}

async fn templates_and_layouts_are_checked_when_saved(app: TestApp) {
    let o = office(&app, "tpl.example.net", "00:15:65:00:00:01").await;
    // A template that extends the built-in one.
    let (status, tpl) = o
        .send(
            &app,
            Method::POST,
            "provisioning/templates",
            Some(json!({"name": "Pickup", "vendor": "yealink",
                "body": "{% extends \"yealink.cfg\" %}\n{% block extra %}features.pickup.direct_pickup_enable = 1\n{% endblock %}"})),
        )
        .await;
    assert_eq!(status, 201, "{tpl}");
    // A template that does not render: 422 naming the line, nothing stored.
    let (status, problem) = o
        .send(
            &app,
            Method::POST,
            "provisioning/templates",
            Some(json!({"name": "Broken", "vendor": "yealink",
                "body": "{% extends \"yealink.cfg\" %}\n{% block extra %}\n{{ account.user }\n{% endblock %}"})),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "body", "{problem}");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("line 3"),
        "{problem}"
    );
    let (_, list) = o
        .send(&app, Method::GET, "provisioning/templates", None)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    // An unknown variable is an error too, not an empty value sent to a phone.
    let (status, problem) = o
        .send(
            &app,
            Method::PATCH,
            &format!("provisioning/templates/{}", id_of(&tpl)),
            Some(json!({"body": "{% extends \"yealink.cfg\" %}\n{% block extra %}x = {{ acount.user }}{% endblock %}"})),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("line 2"),
        "{problem}"
    );
    let (status, _) = o
        .send(
            &app,
            Method::POST,
            "provisioning/templates",
            Some(json!({"name": "Fax", "vendor": "fax-o-matic", "body": "x"})),
        )
        .await;
    assert_eq!(status, 422);
    let (status, _) = o
        .send(
            &app,
            Method::POST,
            "provisioning/templates",
            Some(json!({"name": "Pickup", "vendor": "yealink", "body": "{% extends \"yealink.cfg\" %}"})),
        )
        .await;
    assert_eq!(status, 409, "names are unique in the Domain");

    // Layouts: keys per model, BLF of an Extension of the Domain.
    let keys = json!([{"kind": "line"}, {"kind": "blf", "extension_id": o.bob},
        {"kind": "speed_dial", "number": "+4930123456", "label": "Pizza"},
        {"kind": "voicemail"}, {"kind": "dnd"}, {"kind": "park", "slot": 1}, {"kind": "logout"}]);
    let (status, layout) = o
        .send(
            &app,
            Method::POST,
            "provisioning/layouts",
            Some(json!({"name": "Sales", "model": "yealink-t54w", "keys": keys})),
        )
        .await;
    assert_eq!(status, 201, "{layout}");
    assert_eq!(layout["keys"].as_array().unwrap().len(), 7);
    let max = layout["max_keys"].as_u64().unwrap() as usize;
    // More keys than the model has.
    let too_many: Vec<Value> = (0..=max).map(|_| json!({"kind": "dnd"})).collect();
    let (status, problem) = o
        .send(
            &app,
            Method::POST,
            "provisioning/layouts",
            Some(json!({"name": "Huge", "model": "yealink-t54w", "keys": too_many})),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["code"], "too_many_keys", "{problem}");
    // A BLF of an Extension that is not the Domain's; an unknown model; a bad number.
    let (other_domain, other_admin) = domain_with_admin(&app, "tpl-other.example.net").await;
    let stranger = id_of(
        &create(
            &app,
            &other_admin,
            &other_domain,
            "extensions",
            json!({"number": "201", "display_name": "Stranger"}),
        )
        .await,
    );
    for (body, field) in [
        (
            json!({"name": "X", "model": "yealink-t54w", "keys": [{"kind": "blf", "extension_id": stranger}]}),
            "keys[0].extension_id",
        ),
        (
            json!({"name": "X", "model": "nokia-3310", "keys": []}),
            "model",
        ),
        (
            json!({"name": "X", "model": "yealink-t54w", "keys": [{"kind": "speed_dial", "number": "12ab", "label": "x"}]}),
            "keys[0]",
        ),
        (
            json!({"name": "X", "model": "yealink-t54w", "keys": [{"kind": "line"}, {"kind": "park", "slot": 10}]}),
            "keys[1]",
        ),
    ] {
        let (status, problem) = o
            .send(&app, Method::POST, "provisioning/layouts", Some(body))
            .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    // One logged-out layout per model.
    let (status, _) = o
        .send(&app, Method::POST, "provisioning/layouts",
            Some(json!({"name": "Out", "model": "yealink-t54w", "logged_out": true, "keys": [{"kind": "login"}]})))
        .await;
    assert_eq!(status, 201);
    let (status, problem) = o
        .send(
            &app,
            Method::POST,
            "provisioning/layouts",
            Some(json!({"name": "Out 2", "model": "yealink-t54w", "logged_out": true, "keys": []})),
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    // Cloning to a model with fewer keys: refused, or truncated when asked.
    let big: Vec<Value> = (0..max).map(|_| json!({"kind": "dnd"})).collect();
    let (_, full) = o
        .send(
            &app,
            Method::POST,
            "provisioning/layouts",
            Some(json!({"name": "Full", "model": "yealink-t54w", "keys": big})),
        )
        .await;
    let (status, problem) = o
        .send(
            &app,
            Method::POST,
            &format!("provisioning/layouts/{}/clone", id_of(&full)),
            Some(json!({"model": "yealink-t42u"})),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    let (status, copy) = o
        .send(
            &app,
            Method::POST,
            &format!("provisioning/layouts/{}/clone", id_of(&full)),
            Some(json!({"model": "yealink-t42u", "truncate": true})),
        )
        .await;
    assert_eq!(status, 201, "{copy}");
    assert_eq!(copy["model"], "yealink-t42u");
    assert_eq!(
        copy["keys"].as_array().unwrap().len() as u64,
        copy["max_keys"].as_u64().unwrap()
    );
    let (status, copy) = o
        .send(
            &app,
            Method::POST,
            &format!("provisioning/layouts/{}/clone", id_of(&layout)),
            Some(json!({"model": "yealink-t46u"})),
        )
        .await;
    assert_eq!(status, 201, "{copy}");
    assert_eq!(copy["keys"], layout["keys"]);
    assert_eq!(copy["name"], "Sales (yealink-t46u)");

    // A Device of another Domain cannot name this template, not even through an import.
    let row = json!({"devices": [{"label": "Theirs", "vendor": "Yealink", "model": "T54W",
        "mac_address": "00:15:65:00:00:99", "template_id": id_of(&tpl)}]});
    let (status, report) = call(
        &app,
        &other_admin,
        Method::POST,
        &format!("/api/v1/domains/{other_domain}/import"),
        Some(row.clone()),
    )
    .await;
    assert_eq!(status, 422, "{report}");
    assert!(report.to_string().contains("template_id"), "{report}");
    let (status, report) = o.send(&app, Method::POST, "import", Some(row)).await;
    assert_eq!(status, 201, "{report}");
    let (status, problem) = o
        .send(
            &app,
            Method::PATCH,
            &format!("devices/{}", o.phone),
            Some(json!({"template_id": uuid::Uuid::now_v7()})),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "template_id", "{problem}");
    let (status, device) = o
        .send(
            &app,
            Method::PATCH,
            &format!("devices/{}", o.phone),
            Some(json!({"template_id": id_of(&tpl)})),
        )
        .await;
    assert_eq!(status, 200, "{device}");
    let preview = o.preview(&app).await;
    assert_eq!(preview["template_name"], "Pickup", "{preview}");
    let main = preview["files"][0]["content"].as_str().unwrap();
    assert!(
        main.contains("features.pickup.direct_pickup_enable = 1"),
        "{main}"
    );

    // Another Domain's admin sees none of it.
    for path in [
        format!("provisioning/layouts/{}", id_of(&layout)),
        format!("provisioning/templates/{}", id_of(&tpl)),
        format!("devices/{}/provisioning", o.phone),
    ] {
        let (status, _) = call(
            &app,
            &other_admin,
            Method::GET,
            &format!("/api/v1/domains/{other_domain}/{path}"),
            None,
        )
        .await;
        assert_eq!(status, 404, "{path}");
    }
    // The catalogue.
    let (status, models) = call(&app, &o.admin, Method::GET, "/api/v1/phone-models", None).await;
    assert_eq!(status, 200);
    let vendors: std::collections::BTreeSet<&str> = models
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["vendor"].as_str().unwrap())
        .collect();
    assert_eq!(
        vendors,
        ["cisco", "grandstream", "poly", "snom", "yealink"]
            .into_iter()
            .collect()
    );
}

async fn a_phone_fetches_its_file_with_its_own_credential_and_nothing_else(app: TestApp) {
    let o = office(&app, "fetch.example.net", "00:15:65:AA:BB:01").await;
    let (user, password) = o.credential(&app, &o.phone).await;
    let (_, secret) = o
        .send(
            &app,
            Method::GET,
            &format!("devices/{}/sip-secret", o.phone),
            None,
        )
        .await;
    let sip_secret = secret["sip_secret"].as_str().unwrap().to_owned();
    // The MAC in any case and notation.
    for file in [
        format!("{}.cfg", o.mac),
        format!("{}.cfg", o.mac.to_uppercase()),
        "00-15-65-AA-BB-01.cfg".to_owned(),
    ] {
        let (status, body) = fetch_digest(&app, &file, &user, &password).await;
        assert_eq!(status, 200, "{file}: {body}");
        assert!(body.starts_with("#!version:1.0.0.1"), "{body}");
        assert_eq!(
            value_of(&body, "account.1.user_name").as_deref(),
            Some(user.as_str()),
            "{body}"
        );
        assert_eq!(
            value_of(&body, "account.1.password").as_deref(),
            Some(sip_secret.as_str())
        );
        assert_eq!(
            value_of(&body, "account.1.sip_server.1.address").as_deref(),
            Some("fetch.example.net")
        );
    }
    // Nobody is logged in and there is no layout: a login key.
    let (_, body) = fetch_digest(&app, &format!("{}.cfg", o.mac), &user, &password).await;
    let keys = yealink_keys(&body);
    assert_eq!(keys.len(), 1, "{body}");
    assert_eq!(keys[&1].1, "*11");
    // Every refusal is the same 401: wrong password, unknown MAC, another phone's credential.
    let other_phone = id_of(
        &create(&app, &o.admin, &o.domain, "devices",
            json!({"label": "Desk 2", "mac_address": "00:15:65:AA:BB:02", "vendor": "yealink", "model": "yealink-t54w"})).await,
    );
    let (other_user, other_password) = o.credential(&app, &other_phone).await;
    for (file, u, p) in [
        (
            format!("{}.cfg", o.mac),
            user.clone(),
            "wrong-password".to_owned(),
        ),
        (
            "001565ffffff.cfg".to_owned(),
            user.clone(),
            password.clone(),
        ),
        (
            format!("{}.cfg", o.mac),
            other_user.clone(),
            other_password.clone(),
        ),
    ] {
        let (status, body) = fetch_digest(&app, &file, &u, &p).await;
        assert_eq!(status, 401, "{file} as {u}");
        assert_eq!(body, "authentication required\n");
    }
    // A file this vendor does not ask for: 404, but only once authenticated.
    let (status, _) = fetch_digest(&app, &format!("cfg{}.xml", o.mac), &user, &password).await;
    assert_eq!(status, 404);
    // Not a phone's file at all.
    assert_eq!(
        app.get("/provision/../../etc/passwd")
            .await
            .status()
            .as_u16(),
        404
    );
    assert_eq!(
        app.get("/provision/readme.txt").await.status().as_u16(),
        404
    );
    // Basic over plain HTTP is refused by default even with the right credential.
    assert_eq!(
        fetch_basic(&app, &format!("{}.cfg", o.mac), &user, &password)
            .await
            .status()
            .as_u16(),
        401
    );
    // The fetch is recorded on the Device (address and user agent).
    let mut seen = Value::Null;
    for _ in 0..50 {
        let preview = o.preview(&app).await;
        if !preview["last_fetch_at"].is_null() {
            seen = preview;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen["last_fetch_from"], "127.0.0.1", "{seen}");
    assert!(
        seen["last_fetch_agent"].as_str().unwrap().contains("T54W"),
        "{seen}"
    );
    // The preview renders the same file without the secrets.
    let content = seen["files"][0]["content"].as_str().unwrap();
    assert!(!content.contains(&sip_secret), "{content}");
    assert!(!content.contains(&password), "{content}");
    assert_eq!(
        value_of(content, "account.1.user_name").as_deref(),
        Some(user.as_str())
    );
    // A rotated credential: the old one stops working at once.
    let (status, _) = o
        .send(
            &app,
            Method::POST,
            &format!("devices/{}/provisioning/credential/rotate", o.phone),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = fetch_digest(&app, &format!("{}.cfg", o.mac), &user, &password).await;
    assert_eq!(status, 401);
    let (user, password) = o.credential(&app, &o.phone).await;
    let (status, _) = fetch_digest(&app, &format!("{}.cfg", o.mac), &user, &password).await;
    assert_eq!(status, 200);
    // Disabled: refused like an unknown phone.
    o.send(
        &app,
        Method::PATCH,
        &format!("devices/{}", o.phone),
        Some(json!({"enabled": false})),
    )
    .await;
    let (status, _) = fetch_digest(&app, &format!("{}.cfg", o.mac), &user, &password).await;
    assert_eq!(status, 401);
}

async fn basic_authentication_works_where_it_is_allowed(app: TestApp) {
    let o = office(&app, "basic.example.net", "00:15:65:AA:CC:01").await;
    let (user, password) = o.credential(&app, &o.phone).await;
    let file = format!("{}.cfg", o.mac);
    let ok = fetch_basic(&app, &file, &user, &password).await;
    assert_eq!(ok.status().as_u16(), 200);
    assert!(
        ok.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(ok.headers()["cache-control"], "no-store");
    let body = ok.text().await.unwrap();
    assert!(body.contains(&user));
    let wrong = fetch_basic(&app, &file, &user, "nope").await;
    assert_eq!(wrong.status().as_u16(), 401);
    let offered: Vec<String> = wrong
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        offered.iter().any(|c| c.starts_with("Digest")),
        "{offered:?}"
    );
    assert!(
        offered.iter().any(|c| c.starts_with("Basic")),
        "{offered:?}"
    );
}

async fn the_first_boot_credential_works_only_from_the_domains_networks(app: TestApp) {
    let o = office(&app, "boot.example.net", "00:15:65:AA:DD:01").await;
    let file = format!("{}.cfg", o.mac);
    // Not set: nothing but the Device's own credential works.
    let (status, _) = fetch_digest(&app, &file, "acme-boot", "first-boot-secret").await;
    assert_eq!(status, 401);
    let (status, s) = o
        .send(&app, Method::PATCH, "provisioning/settings",
            Some(json!({"username": "acme-boot", "password": "first-boot-secret", "allowed_networks": ["10.0.0.0/8"], "language": "de"})))
        .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["password_set"], true);
    assert!(s.get("password").is_none(), "{s}");
    // From outside the networks: refused.
    let (status, _) = fetch_digest(&app, &file, "acme-boot", "first-boot-secret").await;
    assert_eq!(status, 401);
    o.send(
        &app,
        Method::PATCH,
        "provisioning/settings",
        Some(json!({"allowed_networks": ["127.0.0.0/8"]})),
    )
    .await;
    let (status, body) = fetch_digest(&app, &file, "acme-boot", "first-boot-secret").await;
    assert_eq!(status, 200, "{body}");
    // The file hands the phone its own credential for the next fetches.
    let (user, password) = o.credential(&app, &o.phone).await;
    assert!(
        body.contains(&password),
        "the phone learns its own provisioning password"
    );
    assert!(body.contains(&user));
    // Another Domain's phone is not served with this Domain's first-boot credential.
    let (other_domain, other_admin) = domain_with_admin(&app, "boot-other.example.net").await;
    create(&app, &other_admin, &other_domain, "devices",
        json!({"label": "Theirs", "mac_address": "00:15:65:AA:DD:02", "vendor": "yealink", "model": "T54W"})).await;
    let (status, _) =
        fetch_digest(&app, "001565aadd02.cfg", "acme-boot", "first-boot-secret").await;
    assert_eq!(status, 401);
    // Validation: half a credential, a bad network, a short password.
    for (body, field) in [
        (json!({"username": null}), "password"),
        (
            json!({"allowed_networks": ["not-a-net"]}),
            "allowed_networks[0]",
        ),
        (json!({"password": "short"}), "password"),
        (json!({"language": "deutsch"}), "language"),
    ] {
        let (status, problem) = o
            .send(&app, Method::PATCH, "provisioning/settings", Some(body))
            .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
}

async fn keys_follow_the_person_and_changes_ask_the_phone_to_fetch_again(app: TestApp) {
    let o = office(&app, "follow.example.net", "00:15:65:AA:EE:01").await;
    let (user, password) = o.credential(&app, &o.phone).await;
    let file = format!("{}.cfg", o.mac);
    let (_, device) = o
        .send(&app, Method::GET, &format!("devices/{}", o.phone), None)
        .await;
    let sip_user = device["sip_username"].as_str().unwrap().to_owned();
    o.send(&app, Method::POST, "provisioning/layouts",
        Some(json!({"name": "Logged out", "model": "yealink-t54w", "logged_out": true,
            "keys": [{"kind": "login", "label": "Sign in"}, {"kind": "speed_dial", "number": "100", "label": "Reception"}]}))).await;
    let mut events = app.events.subscribe();
    let (status, _) = o
        .send(&app, Method::POST, "provisioning/layouts",
            Some(json!({"name": "Alice's", "model": "yealink-t54w",
                "keys": [{"kind": "line"}, {"kind": "blf", "extension_id": o.bob}, {"kind": "logout"}]})))
        .await;
    assert_eq!(status, 201);
    // A layout nobody uses yet asks no phone to fetch.
    let event = events.recv().await.unwrap();
    assert_eq!(event.kind.as_str(), "provisioning.changed");
    assert!(event.check_sync.is_empty(), "{event:?}");

    let (_, body) = fetch_digest(&app, &file, &user, &password).await;
    let keys = yealink_keys(&body);
    assert_eq!(keys[&1].1, "*11", "{body}");
    assert_eq!(keys[&1].2, "Sign in");
    assert_eq!(keys[&2].1, "100");

    // Alice logs in: the phone is asked to fetch, and gets her keys and name.
    let mut events = app.events.subscribe();
    let (status, session) = o.login(&app, json!({"extension": "201"})).await;
    assert_eq!(status, 200, "{session}");
    let event = events.recv().await.unwrap();
    assert!(event.check_sync.contains(&sip_user), "{event:?}");
    let (_, body) = fetch_digest(&app, &file, &user, &password).await;
    assert_eq!(
        value_of(&body, "account.1.display_name").as_deref(),
        Some("Alice"),
        "{body}"
    );
    let keys = yealink_keys(&body);
    assert_eq!(keys.len(), 3, "{body}");
    assert_eq!(keys[&2].1, "202");
    assert_eq!(keys[&2].2, "202 Bob");
    assert_eq!(keys[&3].1, "*12");
    let preview = o.preview(&app).await;
    assert_eq!(preview["layout_source"], "person", "{preview}");
    assert_eq!(preview["extension_id"], o.alice.as_str());

    // Bob is renamed: the phone watching him is asked to fetch and shows the new name.
    let mut events = app.events.subscribe();
    o.send(
        &app,
        Method::PATCH,
        &format!("extensions/{}", o.bob),
        Some(json!({"display_name": "Robert"})),
    )
    .await;
    let event = events.recv().await.unwrap();
    assert!(event.check_sync.contains(&sip_user), "{event:?}");
    let (_, body) = fetch_digest(&app, &file, &user, &password).await;
    assert_eq!(yealink_keys(&body)[&2].2, "202 Robert", "{body}");

    // Alice's layout changes: her phone fetches again and sees it.
    let (_, layouts) = o
        .send(
            &app,
            Method::GET,
            "provisioning/layouts?model=yealink-t54w",
            None,
        )
        .await;
    let alices = layouts
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "Alice's")
        .unwrap()
        .clone();
    let mut events = app.events.subscribe();
    o.send(
        &app,
        Method::PATCH,
        &format!("provisioning/layouts/{}", id_of(&alices)),
        Some(json!({"keys": [{"kind": "line"}, {"kind": "voicemail"}]})),
    )
    .await;
    let event = events.recv().await.unwrap();
    assert_eq!(event.check_sync, vec![sip_user.clone()]);
    let (_, body) = fetch_digest(&app, &file, &user, &password).await;
    assert_eq!(yealink_keys(&body)[&2].1, "*97", "{body}");

    // Logged out again: the logged-out layout.
    let mut events = app.events.subscribe();
    let (status, _) = o
        .send(
            &app,
            Method::DELETE,
            &format!("devices/{}/session", o.phone),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let event = events.recv().await.unwrap();
    assert!(
        event.check_sync.contains(&sip_user) || event.sip_users.contains(&sip_user),
        "{event:?}"
    );
    let (_, body) = fetch_digest(&app, &file, &user, &password).await;
    assert_eq!(yealink_keys(&body)[&1].1, "*11", "{body}");
    assert_ne!(
        value_of(&body, "account.1.display_name").as_deref(),
        Some("Alice")
    );
}

async fn a_group_says_which_layouts_its_members_may_choose(app: TestApp) {
    let o = office(&app, "choose.example.net", "00:15:65:AA:FF:01").await;
    let mut ids = Vec::new();
    for name in ["A-Sales", "B-Support", "C-Boss"] {
        let (_, l) = o
            .send(&app, Method::POST, "provisioning/layouts",
                Some(json!({"name": name, "model": "yealink-t54w", "keys": [{"kind": "line"}, {"kind": "speed_dial", "number": "9", "label": name}]})))
            .await;
        ids.push(id_of(&l));
    }
    let (_, group) = o
        .send(
            &app,
            Method::POST,
            "extension-groups",
            Some(json!({"name": "Support"})),
        )
        .await;
    let group = id_of(&group);
    o.send(
        &app,
        Method::PATCH,
        &format!("extensions/{}", o.alice),
        Some(json!({"group_id": group})),
    )
    .await;
    // Without a list, every layout of the model is open; the first by name is the default.
    let (_, choices) = o
        .send(
            &app,
            Method::GET,
            &format!("devices/{}/provisioning/choices?extension=201", o.phone),
            None,
        )
        .await;
    assert_eq!(choices["layouts"].as_array().unwrap().len(), 3, "{choices}");
    let (status, saved) = o
        .send(
            &app,
            Method::PUT,
            &format!("extension-groups/{group}/provisioning-choices"),
            Some(json!({"layout_ids": [ids[1], ids[2]]})),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    let (_, choices) = o
        .send(
            &app,
            Method::GET,
            &format!("devices/{}/provisioning/choices?extension=201", o.phone),
            None,
        )
        .await;
    let names: Vec<&str> = choices["layouts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["B-Support", "C-Boss"]);
    // A layout the group does not list: refused, nobody logged in.
    let (status, problem) = o
        .login(&app, json!({"extension": "201", "layout_id": ids[0]}))
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "layout_id");
    let (status, _) = o
        .send(
            &app,
            Method::GET,
            &format!("devices/{}/session", o.phone),
            None,
        )
        .await;
    assert_eq!(status, 404);
    // Chosen: used. Not chosen: the first the group lists.
    let (status, _) = o
        .login(&app, json!({"extension": "201", "layout_id": ids[2]}))
        .await;
    assert_eq!(status, 200);
    let preview = o.preview(&app).await;
    assert_eq!(preview["layout_name"], "C-Boss");
    assert_eq!(preview["layout_source"], "chosen");
    o.logout(&app).await;
    o.login(&app, json!({"extension": "201"})).await;
    let preview = o.preview(&app).await;
    assert_eq!(preview["layout_name"], "B-Support");
    assert_eq!(preview["layout_source"], "person");
    // Bob is in no group: every layout, the first by name.
    o.logout(&app).await;
    o.login(&app, json!({"extension": "202"})).await;
    let preview = o.preview(&app).await;
    assert_eq!(preview["layout_name"], "A-Sales");
    // A layout of another Domain in the list: 422.
    let (status, _) = o
        .send(
            &app,
            Method::PUT,
            &format!("extension-groups/{group}/provisioning-choices"),
            Some(json!({"layout_ids": [uuid::Uuid::now_v7()]})),
        )
        .await;
    assert_eq!(status, 422);
}

async fn every_vendor_gets_a_file_in_its_own_format(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "vendors.example.net").await;
    let o = Office {
        domain: domain.clone(),
        admin: admin.clone(),
        alice: String::new(),
        bob: String::new(),
        phone: String::new(),
        mac: String::new(),
    };
    let owner = id_of(
        &create(
            &app,
            &admin,
            &domain,
            "extensions",
            json!({"number": "301", "display_name": "Owner & <Co>"}),
        )
        .await,
    );
    let (_, models) = call(&app, &admin, Method::GET, "/api/v1/phone-models", None).await;
    let mut seen = std::collections::BTreeSet::new();
    for (i, m) in models.as_array().unwrap().iter().enumerate() {
        let vendor = m["vendor"].as_str().unwrap().to_owned();
        if !seen.insert(vendor.clone()) {
            continue;
        }
        let mac = format!("0a0b0c0d0e{i:02x}");
        let device = id_of(
            &create(
                &app,
                &admin,
                &domain,
                "devices",
                json!({"label": format!("{vendor} phone"), "mac_address": mac, "mode": "fixed",
                "owner_extension_id": owner, "vendor": vendor, "model": m["id"]}),
            )
            .await,
        );
        let (user, password) = o.credential(&app, &device).await;
        for pattern in m["files"].as_array().unwrap() {
            let file = pattern.as_str().unwrap().replace("{mac}", &mac);
            let (status, body) = fetch_digest(&app, &file, &user, &password).await;
            assert_eq!(status, 200, "{vendor} {file}: {body}");
            if file.ends_with(".xml") || vendor == "poly" {
                let doc = roxmltree::Document::parse(&body)
                    .unwrap_or_else(|e| panic!("{vendor} {file} is not XML: {e}\n{body}"));
                assert!(
                    doc.root_element().has_children() || doc.root_element().attributes().len() > 0
                );
            } else {
                for line in body
                    .lines()
                    .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                {
                    assert!(line.contains('='), "{vendor}: {line}");
                }
            }
        }
        // The main file holds the account and the owner's name (escaped where XML).
        let main = m["files"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .as_str()
            .unwrap()
            .replace("{mac}", &mac);
        let (_, body) = fetch_digest(&app, &main, &user, &password).await;
        assert!(body.contains(&user), "{vendor}: {body}");
        if vendor == "yealink" {
            assert!(body.contains("Owner & <Co>"), "{body}");
        } else {
            assert!(body.contains("Owner &amp; &lt;Co&gt;"), "{vendor}: {body}");
        }
    }
    assert_eq!(seen.len(), 5);
}

async fn parallel_wrong_guesses_are_throttled_and_never_a_500(app: TestApp) {
    let o = office(&app, "storm.example.net", "00:15:65:AB:00:01").await;
    let (user, password) = o.credential(&app, &o.phone).await;
    let file = format!("{}.cfg", o.mac);
    let guesses = (0..24).map(|i| {
        let app = &app;
        let file = file.clone();
        let user = user.clone();
        async move {
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{user}:guess-{i}"));
            let nonce = app.get(&format!("/provision/{file}")).await;
            let challenge = nonce
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let r = app
                .request(Method::GET, &format!("/provision/{file}"))
                .header(
                    "authorization",
                    if i % 2 == 0 {
                        format!("Basic {token}")
                    } else {
                        let nonce = param(&challenge, "nonce").unwrap_or_default();
                        format!("Digest username=\"{user}\", realm=\"switchboard provisioning\", nonce=\"{nonce}\", uri=\"/provision/{file}\", response=\"00000000000000000000000000000000\"")
                    },
                )
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.headers().get("retry-after").is_some())
        }
    });
    let answers = join_all(guesses).await;
    let refused = answers.iter().filter(|(s, _)| *s == 401).count();
    let throttled = answers.iter().filter(|(s, r)| *s == 429 && *r).count();
    assert!(
        refused <= 5,
        "at most the limit of guesses is evaluated: {answers:?}"
    );
    assert_eq!(
        refused + throttled,
        answers.len(),
        "only 401 and 429: {answers:?}"
    );
    // The right credential from the same address waits too.
    let r = app.get(&format!("/provision/{file}")).await;
    assert_eq!(r.status().as_u16(), 429);
    let _ = password;
}
