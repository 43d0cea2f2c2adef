//! Hot-desking as the field does it: groups that carry the logout action of their members, a
//! placeholder that is a real, limited Extension, and a desk's own person (home Extension) the
//! phone returns to when a visitor logs out. Refusals, tenant isolation and parallel requests
//! included.

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use switchboard_tests::{TestApp, both_databases};

use crate::devices::{create, domain_with_admin, id_of};
use crate::users::{call, create_user, token_of};

both_databases!(
    groups_are_created_listed_changed_and_deleted_with_their_rules,
    a_logout_follows_the_group_of_who_logged_out_then_the_phone_then_the_domain,
    a_placeholder_calls_as_itself_within_its_limits_and_rings_if_it_says_so,
    a_visitors_logout_returns_the_desk_to_its_home_extension,
    a_person_back_from_another_phone_returns_to_their_home_desk,
    parallel_logouts_of_a_visitor_return_the_desk_home_once,
    parallel_visitors_at_a_home_desk_leave_one_session,
);

const PIN: &str = "4711";

struct Desks {
    domain: String,
    admin: String,
    /// Extensions by number: 100 (reception), 201…204 (people, PIN 4711), 299 (placeholder
    /// "Lobby").
    ext: std::collections::HashMap<&'static str, String>,
    /// Hot-desk phones "Desk 1", "Desk 2", "Desk 3".
    desks: Vec<String>,
}

async fn desks(app: &TestApp, sip: &str) -> Desks {
    let (domain, admin) = domain_with_admin(app, sip).await;
    let mut ext = std::collections::HashMap::new();
    for number in ["100", "201", "202", "203", "204"] {
        let body = json!({"number": number, "display_name": format!("Person {number}"),
            "pin": PIN, "hotdesk_allowed": true});
        ext.insert(
            number,
            id_of(&create(app, &admin, &domain, "extensions", body).await),
        );
    }
    let lobby = json!({"number": "299", "display_name": "Lobby", "placeholder": true,
        "hotdesk_allowed": false, "voicemail_enabled": false, "toll_allow": []});
    ext.insert(
        "299",
        id_of(&create(app, &admin, &domain, "extensions", lobby).await),
    );
    let mut list = Vec::new();
    for n in 1..=3 {
        let body = json!({"label": format!("Desk {n}"), "mode": "hotdesk"});
        list.push(id_of(&create(app, &admin, &domain, "devices", body).await));
    }
    Desks {
        domain,
        admin,
        ext,
        desks: list,
    }
}

impl Desks {
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

    async fn patch(&self, app: &TestApp, rest: &str, body: Value) -> Value {
        let (status, out) = self
            .send(app, Method::PATCH, rest, Some(body.clone()))
            .await;
        assert_eq!(status, 200, "PATCH {rest} {body}: {out}");
        out
    }

    /// Logs `number` in to desk `i` as the admin.
    async fn log_in(&self, app: &TestApp, i: usize, number: &str) {
        let (status, body) = self
            .send(
                app,
                Method::PUT,
                &format!("devices/{}/session", self.desks[i]),
                Some(json!({"extension": number})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    async fn log_out(&self, app: &TestApp, i: usize) -> u16 {
        self.send(
            app,
            Method::DELETE,
            &format!("devices/{}/session", self.desks[i]),
            None,
        )
        .await
        .0
    }

    /// Who is logged in to desk `i` and how: `"201 via api"`, or `"-"`.
    async fn who(&self, app: &TestApp, i: usize) -> String {
        let (status, body) = self
            .send(
                app,
                Method::GET,
                &format!("devices/{}/session", self.desks[i]),
                None,
            )
            .await;
        match status {
            200 => format!(
                "{} via {}",
                body["extension_number"].as_str().unwrap_or("?"),
                body["started_via"].as_str().unwrap_or("?")
            ),
            404 => "-".to_owned(),
            other => panic!("{other}: {body}"),
        }
    }

    /// The identity desk `i` calls with: binding kind, Extension number, context, restricted.
    async fn identity(&self, app: &TestApp, i: usize) -> Value {
        let (status, body) = self
            .send(
                app,
                Method::GET,
                &format!("devices/{}/identity", self.desks[i]),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn audit(&self, app: &TestApp, action: &str) -> Vec<Value> {
        let (status, body) = self.send(app, Method::GET, "audit?limit=200", None).await;
        assert_eq!(status, 200, "{body}");
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == action)
            .cloned()
            .collect()
    }
}

fn fields(problem: &Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap_or("").to_owned(),
                        e["code"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn groups_are_created_listed_changed_and_deleted_with_their_rules(app: TestApp) {
    let d = desks(&app, "groups.desks.test").await;
    let lobby = d.ext["299"].clone();
    // Refusals first: nothing is written.
    for (body, want) in [
        (json!({}), ("name", "required")),
        (json!({"name": " "}), ("name", "invalid_name")),
        (
            json!({"name": "V", "logged_out_mode": "placeholder"}),
            ("placeholder_extension_id", "required"),
        ),
        (
            json!({"name": "V", "logged_out_mode": "sometimes"}),
            ("logged_out_mode", "invalid_value"),
        ),
        (
            json!({"name": "V", "logged_out_mode": "placeholder", "placeholder_extension_id": d.ext["201"]}),
            ("placeholder_extension_id", "not_a_placeholder"),
        ),
        (
            json!({"name": "V", "logged_out_mode": "full", "placeholder_extension_id": lobby}),
            ("placeholder_extension_id", "placeholder_mode_only"),
        ),
    ] {
        let (status, problem) = d
            .send(&app, Method::POST, "extension-groups", Some(body.clone()))
            .await;
        assert_eq!(status, 422, "{body}: {problem}");
        let got = fields(&problem);
        assert!(
            got.iter()
                .any(|(f, c)| f == want.0 && (c == want.1 || want.1 == "invalid_value")),
            "{body}: {problem}"
        );
    }
    let (_, page) = d.send(&app, Method::GET, "extension-groups", None).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(0));

    let visitors = create(
        &app,
        &d.admin,
        &d.domain,
        "extension-groups",
        json!({"name": "Visitors", "description": "Guests of the house",
            "logged_out_mode": "placeholder", "placeholder_extension_id": lobby}),
    )
    .await;
    assert_eq!(visitors["logged_out_mode"], "placeholder");
    assert_eq!(visitors["member_count"], 0);
    let group = id_of(&visitors);
    let (status, problem) = d
        .send(
            &app,
            Method::POST,
            "extension-groups",
            Some(json!({"name": "Visitors"})),
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "already_exists");
    create(
        &app,
        &d.admin,
        &d.domain,
        "extension-groups",
        json!({"name": "Staff"}),
    )
    .await;

    // Members join through their Extension; an unknown group is refused.
    let updated = d
        .patch(
            &app,
            &format!("extensions/{}", d.ext["202"]),
            json!({"group_id": group}),
        )
        .await;
    assert_eq!(updated["group_id"], json!(group));
    let (status, problem) = d
        .send(
            &app,
            Method::PATCH,
            &format!("extensions/{}", d.ext["203"]),
            Some(json!({"group_id": uuid::Uuid::now_v7()})),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        fields(&problem),
        [("group_id".to_owned(), "not_found".to_owned())]
    );
    let (_, page) = d
        .send(&app, Method::GET, "extension-groups?q=visit", None)
        .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["member_count"], 1);

    // Leaving `placeholder` drops the placeholder.
    let changed = d
        .patch(
            &app,
            &format!("extension-groups/{group}"),
            json!({"logged_out_mode": "full"}),
        )
        .await;
    assert_eq!(changed["placeholder_extension_id"], Value::Null);
    // The placeholder of a group is in use: it cannot stop being one, and deleting it needs
    // force, which resets the group to `inherit`.
    d.patch(
        &app,
        &format!("extension-groups/{group}"),
        json!({"logged_out_mode": "placeholder", "placeholder_extension_id": lobby}),
    )
    .await;
    let (status, problem) = d
        .send(
            &app,
            Method::PATCH,
            &format!("extensions/{lobby}"),
            Some(json!({"placeholder": false})),
        )
        .await;
    assert_eq!(status, 409, "{problem}");

    // A member cannot change groups; another Domain's admin sees none of them.
    let member_email = "member@groups.desks.test";
    create_user(&app, &d.admin, &d.domain, member_email, &["member"]).await;
    let member = token_of(&app, member_email).await;
    let (status, _) = call(
        &app,
        &member,
        Method::POST,
        &d.path("extension-groups"),
        Some(json!({"name": "X"})),
    )
    .await;
    assert_eq!(status, 403);
    let (other_domain, other_admin_platform) = domain_with_admin(&app, "other.desks.test").await;
    let boss = "boss@other.desks.test";
    create_user(
        &app,
        &other_admin_platform,
        &other_domain,
        boss,
        &["domain_admin"],
    )
    .await;
    let boss = token_of(&app, boss).await;
    for (method, path) in [
        (Method::GET, d.path("extension-groups")),
        (Method::GET, d.path(&format!("extension-groups/{group}"))),
        (Method::PATCH, d.path(&format!("extension-groups/{group}"))),
        (Method::DELETE, d.path(&format!("extension-groups/{group}"))),
        (
            Method::GET,
            format!("/api/v1/domains/{other_domain}/extension-groups/{group}"),
        ),
    ] {
        let body = (method == Method::PATCH).then(|| json!({"name": "Mine"}));
        let (status, problem) = call(&app, &boss, method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} {path}: {problem}");
    }

    // Deleting a group with members needs force, which releases them (audited).
    let (status, problem) = d
        .send(
            &app,
            Method::DELETE,
            &format!("extension-groups/{group}"),
            None,
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "in_use");
    let (status, _) = d
        .send(
            &app,
            Method::DELETE,
            &format!("extension-groups/{group}?force=true"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, ext) = d
        .send(
            &app,
            Method::GET,
            &format!("extensions/{}", d.ext["202"]),
            None,
        )
        .await;
    assert_eq!(ext["group_id"], Value::Null);
    let deleted = d.audit(&app, "extension_group.delete").await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["after"]["released_extensions"], 1);
    assert_eq!(d.audit(&app, "extension_group.create").await.len(), 2);
}

async fn a_logout_follows_the_group_of_who_logged_out_then_the_phone_then_the_domain(app: TestApp) {
    let d = desks(&app, "action.desks.test").await;
    let lobby = d.ext["299"].clone();
    let group = id_of(
        &create(
            &app,
            &d.admin,
            &d.domain,
            "extension-groups",
            json!({"name": "Visitors", "logged_out_mode": "placeholder",
                "placeholder_extension_id": lobby}),
        )
        .await,
    );
    d.patch(
        &app,
        &format!("extensions/{}", d.ext["202"]),
        json!({"group_id": group}),
    )
    .await;
    // The Domain says full. A visitor (group Visitors) leaves Desk 1 to the Lobby.
    d.log_in(&app, 0, "202").await;
    assert_eq!(d.log_out(&app, 0).await, 204);
    let id = d.identity(&app, 0).await;
    assert_eq!(id["binding"]["kind"], "logged_out_placeholder", "{id}");
    assert_eq!(id["effective_extension"]["number"], "299");
    assert_eq!(
        id["restricted"], false,
        "a placeholder calls as itself: {id}"
    );
    assert!(
        id["reason"].as_str().unwrap().contains("group Visitors"),
        "{id}"
    );
    let (_, device) = d
        .send(&app, Method::GET, &format!("devices/{}", d.desks[0]), None)
        .await;
    assert_eq!(device["last_extension_id"], json!(d.ext["202"]));

    // Someone without a group leaves Desk 2: the Domain's `full`.
    d.log_in(&app, 1, "203").await;
    d.log_out(&app, 1).await;
    let id = d.identity(&app, 1).await;
    assert_eq!(id["binding"]["kind"], "logged_out_full", "{id}");
    assert_eq!(id["restricted"], true);

    // The phone's own setting comes before the Domain's, after the group's.
    d.patch(
        &app,
        &format!("devices/{}", d.desks[1]),
        json!({"logged_out_mode": "placeholder", "placeholder_extension_id": lobby}),
    )
    .await;
    assert_eq!(
        d.identity(&app, 1).await["binding"]["kind"],
        "logged_out_placeholder"
    );
    d.patch(
        &app,
        &format!("devices/{}", d.desks[0]),
        json!({"logged_out_mode": "full"}),
    )
    .await;
    assert_eq!(
        d.identity(&app, 0).await["binding"]["kind"],
        "logged_out_placeholder",
        "the group decides over the phone"
    );
    // The group changes its mind: the phone its member left follows at once.
    let mut events = app.events.subscribe();
    d.patch(
        &app,
        &format!("extension-groups/{group}"),
        json!({"logged_out_mode": "inherit"}),
    )
    .await;
    assert_eq!(
        d.identity(&app, 0).await["binding"]["kind"],
        "logged_out_full"
    );
    let event = events.recv().await.expect("an event");
    assert_eq!(event.kind.as_str(), "extension_group.changed");
    let desk1_user = d.identity(&app, 0).await;
    let (_, device) = d
        .send(&app, Method::GET, &format!("devices/{}", d.desks[0]), None)
        .await;
    assert!(
        event
            .sip_users
            .contains(&device["sip_username"].as_str().unwrap().to_owned()),
        "{event:?} {desk1_user}"
    );
}

async fn a_placeholder_calls_as_itself_within_its_limits_and_rings_if_it_says_so(app: TestApp) {
    let d = desks(&app, "placeholder.desks.test").await;
    let lobby = d.ext["299"].clone();
    // Refusals: ringing is for placeholders; the list holds numbers and ranges.
    let (status, problem) = d
        .send(
            &app,
            Method::PATCH,
            &format!("extensions/{}", d.ext["201"]),
            Some(json!({"placeholder_rings": true})),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        fields(&problem),
        [(
            "placeholder_rings".to_owned(),
            "placeholder_only".to_owned()
        )]
    );
    for (bad, code) in [
        (json!(["1"]), "invalid_entry"),
        (json!(["299-200"]), "invalid_range"),
        (json!("100"), ""),
    ] {
        let (status, problem) = d
            .send(
                &app,
                Method::PATCH,
                &format!("extensions/{lobby}"),
                Some(json!({"internal_allow": bad})),
            )
            .await;
        assert_eq!(status, 422, "{bad}: {problem}");
        if !code.is_empty() {
            assert_eq!(
                fields(&problem),
                [("internal_allow".to_owned(), code.to_owned())]
            );
        }
    }
    let ext = d
        .patch(
            &app,
            &format!("extensions/{lobby}"),
            json!({"internal_allow": ["100", "200-202", "100"], "placeholder_rings": true}),
        )
        .await;
    assert_eq!(ext["internal_allow"], json!(["100", "200-202"]));
    assert_eq!(ext["placeholder_rings"], true);
    let (status, body) = d
        .send(
            &app,
            Method::PUT,
            "calling-settings",
            Some(json!({"logged_out_mode": "placeholder", "placeholder_extension_id": lobby})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let id = d.identity(&app, 0).await;
    assert_eq!(id["binding"]["kind"], "logged_out_placeholder", "{id}");
    assert_eq!(id["context"], "placeholder.desks.test");
    assert_eq!(id["caller_id"]["internal_number"], "299");

    // What the logged-out phone may dial, as the dialplan decides it.
    // (Nobody's phone is bound to 100 or 202: an allowed call goes to their voicemail.)
    for (digits, action, cause) in [
        ("100", "voicemail", None),
        ("202", "voicemail", None),
        ("203", "refused", Some("OUTGOING_CALL_BARRED")),
    ] {
        let (status, explained) = d
            .send(
                &app,
                Method::POST,
                "calls/explain",
                Some(json!({"device_id": d.desks[0], "digits": digits})),
            )
            .await;
        assert_eq!(status, 200, "{explained}");
        assert_eq!(
            explained["outcome"]["action"], action,
            "{digits}: {explained}"
        );
        assert_eq!(
            explained["outcome"]["cause"].as_str(),
            cause,
            "{digits}: {explained}"
        );
    }

    // The placeholder rings its logged-out phones, and not one somebody is logged in to.
    d.log_in(&app, 2, "201").await;
    let (status, plan) = d
        .send(
            &app,
            Method::GET,
            &format!("extensions/{lobby}/ring-plan"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{plan}");
    let targets: Vec<&str> = plan["hunts"][0]["steps"][0]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["device_label"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["Desk 1", "Desk 2"], "{plan}");
    assert_eq!(
        plan["hunts"][0]["steps"][0]["targets"][0]["source"]["kind"],
        "logged_out_phone"
    );
    d.patch(
        &app,
        &format!("extensions/{lobby}"),
        json!({"placeholder_rings": false}),
    )
    .await;
    let (_, plan) = d
        .send(
            &app,
            Method::GET,
            &format!("extensions/{lobby}/ring-plan"),
            None,
        )
        .await;
    assert_eq!(plan["hunts"].as_array().map(Vec::len), Some(0), "{plan}");
}

async fn a_visitors_logout_returns_the_desk_to_its_home_extension(app: TestApp) {
    let d = desks(&app, "home.desks.test").await;
    // Refusals: a placeholder, a fixed phone, an unknown Extension.
    for (desk_body, want) in [
        (json!({"home_extension_id": d.ext["299"]}), "is_placeholder"),
        (
            json!({"home_extension_id": uuid::Uuid::now_v7()}),
            "not_found",
        ),
        (
            json!({"mode": "fixed", "owner_extension_id": d.ext["100"], "home_extension_id": d.ext["201"]}),
            "hotdesk_only",
        ),
    ] {
        let (status, problem) = d
            .send(
                &app,
                Method::PATCH,
                &format!("devices/{}", d.desks[0]),
                Some(desk_body.clone()),
            )
            .await;
        assert_eq!(status, 422, "{desk_body}: {problem}");
        assert!(
            fields(&problem).contains(&("home_extension_id".to_owned(), want.to_owned())),
            "{desk_body}: {problem}"
        );
    }
    // Setting the home of an idle desk seats the person at once.
    let device = d
        .patch(
            &app,
            &format!("devices/{}", d.desks[0]),
            json!({"home_extension_id": d.ext["201"]}),
        )
        .await;
    assert_eq!(device["home_extension_id"], json!(d.ext["201"]));
    assert_eq!(d.who(&app, 0).await, "201 via home");

    // A visitor with the PIN (no admin right) takes the desk.
    let email = "visitor@home.desks.test";
    create_user(&app, &d.admin, &d.domain, email, &["member"]).await;
    let visitor = token_of(&app, email).await;
    let (status, body) = call(
        &app,
        &visitor,
        Method::PUT,
        &d.path(&format!("devices/{}/session", d.desks[0])),
        Some(json!({"extension": "202", "pin": PIN})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(d.who(&app, 0).await, "202 via api");
    // The visitor leaves: the desk is its person's again, audited.
    let mut events = app.events.subscribe();
    assert_eq!(d.log_out(&app, 0).await, 204);
    assert_eq!(d.who(&app, 0).await, "201 via home");
    let kinds: Vec<&str> = [events.recv().await.unwrap(), events.recv().await.unwrap()]
        .iter()
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(kinds, ["session.ended", "session.started"]);
    let starts = d.audit(&app, "hotdesk.session.start").await;
    assert_eq!(starts[0]["after"]["started_via"], "home");
    assert_eq!(
        starts[0]["after"]["why"],
        "returned to its home Extension after 202 logged out"
    );
    let visitor_end = d.audit(&app, "hotdesk.session.end").await;
    assert!(
        visitor_end
            .iter()
            .any(|e| e["after"]["ended_reason"] == "visitor_logged_in"),
        "{visitor_end:?}"
    );
    let (_, plan) = d
        .send(
            &app,
            Method::GET,
            &format!("extensions/{}/ring-plan", d.ext["201"]),
            None,
        )
        .await;
    assert_eq!(
        plan["hunts"][0]["steps"][0]["targets"][0]["device_label"],
        "Desk 1"
    );

    // The person logs out of their own desk: the logout action applies (the Domain's full).
    assert_eq!(d.log_out(&app, 0).await, 204);
    assert_eq!(d.who(&app, 0).await, "-");
    assert_eq!(
        d.identity(&app, 0).await["binding"]["kind"],
        "logged_out_full"
    );

    // A home person who may no longer hot-desk is not sent back.
    d.log_in(&app, 0, "203").await;
    d.patch(
        &app,
        &format!("extensions/{}", d.ext["201"]),
        json!({"hotdesk_allowed": false}),
    )
    .await;
    d.log_out(&app, 0).await;
    assert_eq!(d.who(&app, 0).await, "-");
}

async fn a_person_back_from_another_phone_returns_to_their_home_desk(app: TestApp) {
    let d = desks(&app, "back.desks.test").await;
    d.patch(
        &app,
        &format!("devices/{}", d.desks[0]),
        json!({"home_extension_id": d.ext["201"]}),
    )
    .await;
    assert_eq!(d.who(&app, 0).await, "201 via home");
    // One phone at a time (the default): 201 logs in to the meeting room, the desk is empty.
    d.log_in(&app, 1, "201").await;
    assert_eq!(d.who(&app, 0).await, "-");
    assert_eq!(d.who(&app, 1).await, "201 via admin");
    // Back from the meeting: the desk is theirs again.
    d.log_out(&app, 1).await;
    assert_eq!(d.who(&app, 1).await, "-");
    assert_eq!(d.who(&app, 0).await, "201 via home");
    // An admin ending 201's sessions in bulk does not send them back anywhere.
    let (status, body) = d
        .send(
            &app,
            Method::POST,
            "hotdesk/end",
            Some(json!({"extension_id": d.ext["201"], "reason": "leaving early"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(d.who(&app, 0).await, "-");
}

async fn parallel_logouts_of_a_visitor_return_the_desk_home_once(app: TestApp) {
    let d = desks(&app, "race.desks.test").await;
    d.patch(
        &app,
        &format!("devices/{}", d.desks[0]),
        json!({"home_extension_id": d.ext["201"]}),
    )
    .await;
    // The visitor is a User whose Extension is 202; they log out of the desk themselves, many
    // times at once (a double tap, a retrying client): their session ends once, the desk
    // returns to 201 once, and nobody's logout ends 201's session.
    let email = "visitor@race.desks.test";
    let user = create_user(&app, &d.admin, &d.domain, email, &["member"]).await;
    d.patch(
        &app,
        &format!("extensions/{}", d.ext["202"]),
        json!({"user_id": user}),
    )
    .await;
    let visitor = token_of(&app, email).await;
    d.log_in(&app, 0, "202").await;
    let path = format!("/api/v1/me/hotdesk/{}", d.desks[0]);
    let statuses = join_all((0..12).map(|_| {
        let (app, visitor, path) = (&app, &visitor, &path);
        async move { call(app, visitor, Method::DELETE, path, None).await.0 }
    }))
    .await;
    // Whoever came after the first found 201 there: not theirs to end (409), never a 500.
    assert!(
        statuses.iter().all(|s| *s == 204 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.contains(&204), "{statuses:?}");
    assert_eq!(d.who(&app, 0).await, "201 via home");
    let ends = d.audit(&app, "hotdesk.session.end").await;
    assert_eq!(
        ends.iter()
            .filter(|e| e["before"]["extension_number"] == "202")
            .count(),
        1,
        "{ends:?}"
    );
    assert_eq!(
        ends.iter()
            .filter(|e| e["before"]["extension_number"] == "201")
            .count(),
        1,
        "only the visitor's login ended 201's session: {ends:?}"
    );
    let homes = d
        .audit(&app, "hotdesk.session.start")
        .await
        .into_iter()
        .filter(|e| e["after"]["started_via"] == "home")
        .count();
    // One when the home was set, one when the visitor left.
    assert_eq!(homes, 2);
}

async fn parallel_visitors_at_a_home_desk_leave_one_session(app: TestApp) {
    let d = desks(&app, "crowd.desks.test").await;
    d.patch(
        &app,
        &format!("devices/{}", d.desks[0]),
        json!({"home_extension_id": d.ext["201"]}),
    )
    .await;
    let email = "visitor@crowd.desks.test";
    create_user(&app, &d.admin, &d.domain, email, &["member"]).await;
    let visitor = token_of(&app, email).await;
    let path = d.path(&format!("devices/{}/session", d.desks[0]));
    let statuses = join_all(
        ["202", "203", "204", "202", "203", "204"]
            .into_iter()
            .map(|n| {
                let (app, visitor, path) = (&app, &visitor, &path);
                async move {
                    call(
                        app,
                        visitor,
                        Method::PUT,
                        path,
                        Some(json!({"extension": n, "pin": PIN})),
                    )
                    .await
                    .0
                }
            }),
    )
    .await;
    // The first visitor takes the desk from its person; the others find it taken (409) or,
    // for the same person, already theirs (200); a burst of PIN checks past the server's
    // capacity is answered 503 with Retry-After (never a 500, never a second session).
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409 || *s == 503),
        "{statuses:?}"
    );
    assert!(statuses.contains(&200), "{statuses:?}");
    let who = d.who(&app, 0).await;
    assert!(
        ["202 via api", "203 via api", "204 via api"].contains(&who.as_str()),
        "{who}"
    );
    let (_, page) = d.send(&app, Method::GET, "hotdesk/sessions", None).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1), "{page}");
}
