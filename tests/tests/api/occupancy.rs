//! Who sits where, for admins: a Domain's active hot-desk sessions and Location sign-ins,
//! listed with filters and ended in bulk with a reason (audited, published after commit),
//! refusals, tenant isolation, and parallel bulk endings that end each session once.

use std::sync::Arc;

use chrono::{Duration, Utc};
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use switchboard_domain::events::ChangeKind;
use switchboard_tests::{TestApp, both_databases};

use crate::devices::{create, domain_with_admin, id_of};
use crate::users::{call, create_user, token_of};

both_databases!(
    admins_see_who_sits_where_with_filters,
    ending_in_bulk_logs_phones_out_audited_and_published_after_commit,
    bulk_endings_are_refused_without_a_scope_a_reason_or_the_right,
    parallel_bulk_endings_end_each_session_once,
    me_shows_my_extension_my_phones_and_my_location,
    a_person_finds_the_phone_they_stand_at_but_cannot_list_them,
    locations_sign_people_out_by_themselves_after_hours_or_daily,
    a_locations_short_code_is_digits_and_unique_in_its_domain,
);

const PIN: &str = "4711";

struct Office {
    domain: String,
    admin: String,
    member: String,
    sip_domain: String,
    north: String,
    south: String,
    /// Hot-desk phones: two in North, one in South, one in no Location.
    desks: Vec<String>,
    /// Extensions 201…205 (hot-desk allowed, PIN 4711).
    exts: Vec<String>,
}

async fn office(app: &TestApp, sip: &str) -> Office {
    let (domain, admin) = domain_with_admin(app, sip).await;
    let email = format!("member@{sip}");
    create_user(app, &admin, &domain, &email, &["member"]).await;
    let member = token_of(app, &email).await;
    let location = |name: &'static str| {
        let (admin, domain) = (&admin, &domain);
        async move { id_of(&create(app, admin, domain, "locations", json!({"name": name})).await) }
    };
    let north = location("North").await;
    let south = location("South").await;
    let mut desks = Vec::new();
    for (label, loc) in [
        ("North 1", Some(&north)),
        ("North 2", Some(&north)),
        ("South 1", Some(&south)),
        ("Lobby", None),
    ] {
        let mut body = json!({"label": label, "mode": "hotdesk"});
        if let Some(l) = loc {
            body["location_id"] = json!(l);
        }
        desks.push(id_of(&create(app, &admin, &domain, "devices", body).await));
    }
    let mut exts = Vec::new();
    for n in 201..=205 {
        exts.push(id_of(
            &create(
                app,
                &admin,
                &domain,
                "extensions",
                json!({"number": n.to_string(), "display_name": format!("Person {n}"),
                    "pin": PIN, "hotdesk_allowed": true}),
            )
            .await,
        ));
    }
    Office {
        domain,
        admin,
        member,
        sip_domain: sip.to_owned(),
        north,
        south,
        desks,
        exts,
    }
}

impl Office {
    async fn log_in(&self, app: &TestApp, desk: usize, number: &str) {
        let (status, body) = call(
            app,
            &self.admin,
            Method::PUT,
            &format!(
                "/api/v1/domains/{}/devices/{}/session",
                self.domain, self.desks[desk]
            ),
            Some(json!({"extension": number})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }

    async fn sign_in(&self, app: &TestApp, ext: usize, location: &str) {
        let (status, body) = call(
            app,
            &self.admin,
            Method::PUT,
            &format!(
                "/api/v1/domains/{}/extensions/{}/location",
                self.domain, self.exts[ext]
            ),
            Some(json!({"location_id": location})),
        )
        .await;
        assert!(status == 200 || status == 204, "{status} {body}");
    }

    /// 201 on North 1, 202 on North 2, 203 on South 1, 204 in the lobby; 201 signed in to
    /// North, 205 to South.
    async fn occupy(&self, app: &TestApp) {
        self.log_in(app, 0, "201").await;
        self.log_in(app, 1, "202").await;
        self.log_in(app, 2, "203").await;
        self.log_in(app, 3, "204").await;
        self.sign_in(app, 0, &self.north).await;
        self.sign_in(app, 4, &self.south).await;
    }

    async fn get(&self, app: &TestApp, token: &str, what: &str, query: &str) -> (u16, Value) {
        call(
            app,
            token,
            Method::GET,
            &format!("/api/v1/domains/{}/{what}{query}", self.domain),
            None,
        )
        .await
    }

    async fn numbers(&self, app: &TestApp, what: &str, query: &str) -> Vec<String> {
        let (status, body) = self.get(app, &self.admin, what, query).await;
        assert_eq!(status, 200, "{body}");
        let mut n: Vec<String> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["extension_number"].as_str().unwrap().to_owned())
            .collect();
        n.sort();
        n
    }

    async fn end(&self, app: &TestApp, token: &str, body: Value) -> (u16, Value) {
        call(
            app,
            token,
            Method::POST,
            &format!("/api/v1/domains/{}/hotdesk/end", self.domain),
            Some(body),
        )
        .await
    }

    async fn audit(&self, app: &TestApp, action: &str) -> Vec<Value> {
        let (status, body) = call(
            app,
            &self.admin,
            Method::GET,
            &format!("/api/v1/domains/{}/audit?limit=200", self.domain),
            None,
        )
        .await;
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

fn enc(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        .replace('+', "%2B")
}

async fn admins_see_who_sits_where_with_filters(app: TestApp) {
    let o = office(&app, "occupancy1.example.net").await;
    let s = "hotdesk/sessions";
    let l = "location-sign-ins";
    assert!(o.numbers(&app, s, "").await.is_empty());
    o.occupy(&app).await;

    let (status, all) = o.get(&app, &o.admin, s, "").await;
    assert_eq!(status, 200, "{all}");
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{all}");
    let first = items
        .iter()
        .find(|i| i["extension_number"] == "201")
        .unwrap();
    assert_eq!(first["device_id"], json!(o.desks[0]));
    assert_eq!(first["device_label"], "North 1");
    assert_eq!(first["location_id"], json!(o.north));
    assert_eq!(first["extension_id"], json!(o.exts[0]));
    assert_eq!(first["extension_name"], "Person 201");
    assert_eq!(first["started_via"], "admin");
    let lobby = items
        .iter()
        .find(|i| i["extension_number"] == "204")
        .unwrap();
    assert_eq!(lobby["location_id"], Value::Null);

    assert_eq!(
        o.numbers(&app, s, &format!("?location_id={}", o.north))
            .await,
        ["201", "202"]
    );
    assert_eq!(
        o.numbers(&app, s, &format!("?extension_id={}", o.exts[2]))
            .await,
        ["203"]
    );
    assert_eq!(
        o.numbers(&app, s, &format!("?device_id={}", o.desks[3]))
            .await,
        ["204"]
    );
    assert_eq!(
        o.numbers(
            &app,
            s,
            &format!("?location_id={}&extension_id={}", o.north, o.exts[2])
        )
        .await,
        Vec::<String>::new(),
        "every filter must hold"
    );
    let hour_ago = enc(Utc::now() - Duration::hours(1));
    let soon = enc(Utc::now() + Duration::minutes(5));
    assert!(
        o.numbers(&app, s, &format!("?started_before={hour_ago}"))
            .await
            .is_empty()
    );
    assert_eq!(
        o.numbers(&app, s, &format!("?started_before={soon}"))
            .await
            .len(),
        4
    );

    let (status, signed) = o.get(&app, &o.admin, l, "").await;
    assert_eq!(status, 200, "{signed}");
    assert_eq!(signed["items"].as_array().unwrap().len(), 2, "{signed}");
    let (_, north) = o
        .get(&app, &o.admin, l, &format!("?location_id={}", o.north))
        .await;
    assert_eq!(north["items"].as_array().unwrap().len(), 1, "{north}");
    assert_eq!(north["items"][0]["extension_number"], "201");
    assert_eq!(north["items"][0]["location_name"], "North");
    assert_eq!(north["items"][0]["location_id"], json!(o.north));
    assert!(
        o.numbers(&app, l, &format!("?device_id={}", o.desks[0]))
            .await
            .is_empty(),
        "no sign-in is on a phone"
    );
    assert_eq!(
        o.numbers(&app, l, &format!("?extension_id={}", o.exts[4]))
            .await,
        ["205"]
    );

    // Refusals: a member may not see who sits where; another Domain's admin gets a 404;
    // a filter that is no id or no time, or an unknown filter, is a 422.
    for what in [s, l] {
        let (status, body) = o.get(&app, &o.member, what, "").await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["status"], 403);
        let (status, _) = o.get(&app, &o.admin, what, "?location_id=nope").await;
        assert_eq!(status, 422);
        let (status, _) = o
            .get(&app, &o.admin, what, "?started_before=yesterday")
            .await;
        assert_eq!(status, 422);
        let (status, _) = o.get(&app, &o.admin, what, "?colour=red").await;
        assert_eq!(status, 422);
    }
    let other = office(&app, "occupancy1-other.example.net").await;
    let outsider_email = "admin@occupancy1-other.example.net";
    create_user(
        &app,
        &other.admin,
        &other.domain,
        outsider_email,
        &["domain_admin"],
    )
    .await;
    let outsider = token_of(&app, outsider_email).await;
    for what in [s, l] {
        let (status, body) = o.get(&app, &outsider, what, "").await;
        assert_eq!(status, 404, "{body}");
    }
    let _ = o.sip_domain;
}

async fn ending_in_bulk_logs_phones_out_audited_and_published_after_commit(app: TestApp) {
    let o = office(&app, "occupancy2.example.net").await;
    o.occupy(&app).await;
    let mut events = app.events.subscribe();

    // Closing time in North: both its phones are logged out and 201 is signed out of it.
    let (status, ended) = o
        .end(
            &app,
            &o.admin,
            json!({"location_id": o.north, "reason": "  North closes at 20:00  "}),
        )
        .await;
    assert_eq!(status, 200, "{ended}");
    let mut numbers: Vec<&str> = ended["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["extension_number"].as_str().unwrap())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, ["201", "202"], "{ended}");
    assert_eq!(ended["sign_ins"].as_array().unwrap().len(), 1, "{ended}");
    assert_eq!(ended["sign_ins"][0]["extension_number"], "201");
    assert_eq!(
        o.numbers(&app, "hotdesk/sessions", "").await,
        ["203", "204"]
    );
    assert_eq!(o.numbers(&app, "location-sign-ins", "").await, ["205"]);

    // Published after commit: two phones logged out, one sign-out.
    let mut kinds = Vec::new();
    while let Ok(event) = events.try_recv() {
        assert_eq!(event.sip_domain, o.sip_domain);
        kinds.push(event.kind);
    }
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == ChangeKind::SessionEnded)
            .count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == ChangeKind::LocationSignedOut)
            .count(),
        1,
        "{kinds:?}"
    );

    // Audited with the reason, as the admin who did it.
    let session_ends = o.audit(&app, "hotdesk.session.end").await;
    assert_eq!(session_ends.len(), 2, "{session_ends:?}");
    for e in &session_ends {
        assert_eq!(e["after"]["ended_reason"], "forced_by_admin", "{e}");
        assert_eq!(
            e["after"]["why"], "logged out by admin: North closes at 20:00",
            "{e}"
        );
    }
    let sign_outs = o.audit(&app, "location.sign_out").await;
    assert_eq!(sign_outs.len(), 1, "{sign_outs:?}");
    assert_eq!(sign_outs[0]["after"]["reason"], "forced_by_admin");
    assert_eq!(
        sign_outs[0]["after"]["why"],
        "signed out by admin: North closes at 20:00"
    );

    // Again: nothing left to end there, and that is no error.
    let (status, again) = o
        .end(
            &app,
            &o.admin,
            json!({"location_id": o.north, "reason": "again"}),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, json!({"sessions": [], "sign_ins": []}));
    assert!(
        events.try_recv().is_err(),
        "nothing ended, nothing published"
    );

    // Only sign-ins of an Extension; then only what started before an hour ago (nothing).
    let (_, only) = o
        .end(
            &app,
            &o.admin,
            json!({"extension_id": o.exts[4], "sessions": false, "reason": "moved"}),
        )
        .await;
    assert_eq!(only["sessions"], json!([]));
    assert_eq!(only["sign_ins"].as_array().unwrap().len(), 1, "{only}");
    let (_, old) = o
        .end(
            &app,
            &o.admin,
            json!({"all": true, "started_before": Utc::now() - Duration::hours(1), "reason": "stale"}),
        )
        .await;
    assert_eq!(old, json!({"sessions": [], "sign_ins": []}));
    // One phone, then the whole Domain.
    let (_, one) = o
        .end(
            &app,
            &o.admin,
            json!({"device_id": o.desks[3], "reason": "lobby"}),
        )
        .await;
    assert_eq!(one["sessions"][0]["extension_number"], "204", "{one}");
    let (_, rest) = o
        .end(&app, &o.admin, json!({"all": true, "reason": "night"}))
        .await;
    assert_eq!(rest["sessions"][0]["extension_number"], "203", "{rest}");
    assert!(o.numbers(&app, "hotdesk/sessions", "").await.is_empty());
    assert!(o.numbers(&app, "location-sign-ins", "").await.is_empty());
    // The phones can be used again at once.
    o.log_in(&app, 0, "202").await;
    assert_eq!(o.numbers(&app, "hotdesk/sessions", "").await, ["202"]);
}

async fn bulk_endings_are_refused_without_a_scope_a_reason_or_the_right(app: TestApp) {
    let o = office(&app, "occupancy3.example.net").await;
    o.occupy(&app).await;
    let field_of = |body: &Value| -> Vec<String> {
        body["errors"]
            .as_array()
            .map(|e| {
                e.iter()
                    .map(|x| x["field"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let cases = [
        (json!({"reason": "no scope"}), "location_id"),
        (
            json!({"location_id": o.north, "all": true, "reason": "two scopes"}),
            "location_id",
        ),
        (
            json!({"location_id": o.north, "extension_id": o.exts[0], "reason": "two"}),
            "location_id",
        ),
        (json!({"all": true, "reason": "   "}), "reason"),
        (json!({"all": true, "reason": "x".repeat(201)}), "reason"),
        (
            json!({"all": true, "sessions": false, "sign_ins": false, "reason": "none"}),
            "sessions",
        ),
        (
            json!({"location_id": uuid::Uuid::new_v4(), "reason": "unknown"}),
            "location_id",
        ),
        (
            json!({"extension_id": uuid::Uuid::new_v4(), "reason": "unknown"}),
            "extension_id",
        ),
        (
            json!({"device_id": uuid::Uuid::new_v4(), "reason": "unknown"}),
            "device_id",
        ),
    ];
    for (body, field) in cases {
        let (status, problem) = o.end(&app, &o.admin, body.clone()).await;
        assert_eq!(status, 422, "{body} → {problem}");
        assert!(
            field_of(&problem).iter().any(|f| f == field),
            "{body} → {problem}"
        );
    }
    let (status, problem) = o.end(&app, &o.admin, json!({"all": true})).await;
    assert_eq!(status, 422, "a missing reason: {problem}");
    let (status, _) = o
        .end(
            &app,
            &o.admin,
            json!({"all": true, "reason": "x", "colour": "red"}),
        )
        .await;
    assert_eq!(status, 422, "unknown fields are refused");
    // Another Domain's Location is unknown here.
    let other = office(&app, "occupancy3-other.example.net").await;
    let (status, _) = o
        .end(
            &app,
            &o.admin,
            json!({"location_id": other.north, "reason": "x"}),
        )
        .await;
    assert_eq!(status, 422);
    // A member may not (403, even with a bad body); another Domain's admin gets a 404.
    let (status, body) = o.end(&app, &o.member, json!({"reason": "x"})).await;
    assert_eq!(status, 403, "{body}");
    let outsider_email = "admin@occupancy3-other.example.net";
    create_user(
        &app,
        &other.admin,
        &other.domain,
        outsider_email,
        &["domain_admin"],
    )
    .await;
    let outsider = token_of(&app, outsider_email).await;
    let (status, _) = o
        .end(&app, &outsider, json!({"all": true, "reason": "x"}))
        .await;
    assert_eq!(status, 404);
    // Nothing was ended by any of that.
    assert_eq!(o.numbers(&app, "hotdesk/sessions", "").await.len(), 4);
    assert_eq!(o.numbers(&app, "location-sign-ins", "").await.len(), 2);
    assert!(o.audit(&app, "hotdesk.session.end").await.is_empty());
    let _ = o.south;
}

async fn parallel_bulk_endings_end_each_session_once(app: TestApp) {
    let o = office(&app, "occupancy4.example.net").await;
    o.occupy(&app).await;
    let app = Arc::new(app);
    let o = Arc::new(o);
    let answers = join_all((0..8).map(|i| {
        let (app, o) = (app.clone(), o.clone());
        async move {
            let body = if i % 2 == 0 {
                json!({"all": true, "reason": format!("sweep {i}")})
            } else {
                json!({"location_id": o.north, "reason": format!("north {i}")})
            };
            o.end(&app, &o.admin, body).await
        }
    }))
    .await;
    let mut sessions = Vec::new();
    let mut sign_ins = Vec::new();
    for (status, body) in answers {
        assert_eq!(status, 200, "no 5xx, no conflict: {body}");
        for s in body["sessions"].as_array().unwrap() {
            sessions.push(s["id"].as_str().unwrap().to_owned());
        }
        for s in body["sign_ins"].as_array().unwrap() {
            sign_ins.push(s["extension_id"].as_str().unwrap().to_owned());
        }
    }
    sessions.sort();
    let before = sessions.len();
    sessions.dedup();
    assert_eq!(before, 4, "each session reported ended once: {sessions:?}");
    assert_eq!(sessions.len(), 4);
    assert_eq!(sign_ins.len(), 2, "{sign_ins:?}");
    assert_eq!(o.audit(&app, "hotdesk.session.end").await.len(), 4);
    assert_eq!(o.audit(&app, "location.sign_out").await.len(), 2);
    assert!(o.numbers(&app, "hotdesk/sessions", "").await.is_empty());
}

/// A member linked to Extension 201 of the office, with their token.
async fn linked_member(app: &TestApp, o: &Office, sip: &str) -> (String, String) {
    let email = format!("linked@{sip}");
    let user = create_user(app, &o.admin, &o.domain, &email, &["member"]).await;
    let (status, body) = call(
        app,
        &o.admin,
        Method::PATCH,
        &format!("/api/v1/domains/{}/extensions/{}", o.domain, o.exts[0]),
        Some(json!({"user_id": user})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (user, token_of(app, &email).await)
}

async fn me_shows_my_extension_my_phones_and_my_location(app: TestApp) {
    let sip = "occupancy5.example.net";
    let o = office(&app, sip).await;
    let (_, token) = linked_member(&app, &o, sip).await;
    let me = |token: String| {
        let app = &app;
        async move {
            let (status, body) = call(app, &token, Method::GET, "/api/v1/me", None).await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    let body = me(token.clone()).await;
    let domain = &body["domains"][0];
    assert_eq!(domain["domain"]["id"], json!(o.domain));
    assert_eq!(domain["extension"]["id"], json!(o.exts[0]));
    assert_eq!(domain["extension"]["number"], "201");
    assert_eq!(domain["extension"]["display_name"], "Person 201");
    assert_eq!(domain["extension"]["hotdesk_sessions"], json!([]));
    assert_eq!(domain["extension"]["location"], Value::Null);

    o.occupy(&app).await;
    let body = me(token.clone()).await;
    let ext = &body["domains"][0]["extension"];
    let desks = ext["hotdesk_sessions"].as_array().unwrap();
    assert_eq!(desks.len(), 1, "{ext}");
    assert_eq!(desks[0]["device_id"], json!(o.desks[0]));
    assert_eq!(desks[0]["device_label"], "North 1");
    assert_eq!(desks[0]["location_id"], json!(o.north));
    assert_eq!(desks[0]["started_via"], "admin");
    assert_eq!(ext["location"]["id"], json!(o.north));
    assert_eq!(ext["location"]["name"], "North");

    // Someone without an Extension there sees none; the admin's view is unchanged.
    let body = me(o.member.clone()).await;
    assert_eq!(body["domains"][0]["extension"], Value::Null, "{body}");
    // Logged out and signed out: gone from my view at once.
    let (status, _) = o
        .end(
            &app,
            &o.admin,
            json!({"extension_id": o.exts[0], "reason": "test"}),
        )
        .await;
    assert_eq!(status, 200);
    let body = me(token).await;
    assert_eq!(
        body["domains"][0]["extension"]["hotdesk_sessions"],
        json!([])
    );
    assert_eq!(body["domains"][0]["extension"]["location"], Value::Null);
}

async fn a_person_finds_the_phone_they_stand_at_but_cannot_list_them(app: TestApp) {
    let sip = "occupancy6.example.net";
    let o = office(&app, sip).await;
    let (_, token) = linked_member(&app, &o, sip).await;
    o.log_in(&app, 0, "201").await;
    o.log_in(&app, 1, "202").await;
    let find = |q: &str| {
        let (app, token) = (&app, token.clone());
        let q = q.replace(' ', "%20");
        async move {
            call(
                app,
                &token,
                Method::GET,
                &format!("/api/v1/me/hotdesk/phones?q={q}"),
                None,
            )
            .await
        }
    };
    // By label, whatever the case and the spaces around it.
    let (status, body) = find("  north 2 ").await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{body}");
    assert_eq!(items[0]["device_id"], json!(o.desks[1]));
    assert_eq!(items[0]["label"], "North 2");
    assert_eq!(items[0]["location_name"], "North");
    assert_eq!(items[0]["in_use"], true);
    assert_eq!(items[0]["mine"], false);
    let (_, body) = find("North 1").await;
    assert_eq!(
        body["items"][0]["mine"], true,
        "my own Extension is on it: {body}"
    );
    let (_, body) = find("Lobby").await;
    assert_eq!(body["items"][0]["in_use"], false, "{body}");
    assert_eq!(body["items"][0]["location_id"], Value::Null);
    // By the SIP user name its screen shows.
    let (_, device) = call(
        &app,
        &o.admin,
        Method::GET,
        &format!("/api/v1/domains/{}/devices/{}", o.domain, o.desks[2]),
        None,
    )
    .await;
    let sip_user = device["sip_username"].as_str().unwrap().to_uppercase();
    let (_, body) = find(&sip_user).await;
    assert_eq!(body["items"][0]["device_id"], json!(o.desks[2]), "{body}");
    // No partial matches (nobody lists every phone), no fixed phones, no other Domain's.
    for q in ["North", "Nor", "orth 1"] {
        let (status, body) = find(q).await;
        assert_eq!(status, 200);
        assert_eq!(body["items"], json!([]), "{q}: {body}");
    }
    create(
        &app,
        &o.admin,
        &o.domain,
        "devices",
        json!({"label": "Boss", "mode": "fixed", "owner_extension_id": o.exts[1]}),
    )
    .await;
    let (_, body) = find("Boss").await;
    assert_eq!(body["items"], json!([]), "a fixed phone is no hot desk");
    let other = office(&app, "occupancy6-other.example.net").await;
    create(
        &app,
        &other.admin,
        &other.domain,
        "devices",
        json!({"label": "Elsewhere", "mode": "hotdesk"}),
    )
    .await;
    let (_, body) = find("Elsewhere").await;
    assert_eq!(
        body["items"],
        json!([]),
        "another Domain's phone is not found"
    );
    // Refusals.
    for q in ["", "x", &"y".repeat(101)] {
        let (status, body) = find(q).await;
        assert_eq!(status, 422, "{q}: {body}");
    }
    let (status, _) = call(&app, &token, Method::GET, "/api/v1/me/hotdesk/phones", None).await;
    assert_eq!(status, 422, "q is required");
    // A role without hotdesk.self.
    let (status, role) = call(
        &app,
        &o.admin,
        Method::POST,
        &format!("/api/v1/domains/{}/roles", o.domain),
        Some(json!({"name": "Wallboard", "permissions": ["domains.read", "presence.read"]})),
    )
    .await;
    assert_eq!(status, 201, "{role}");
    let reader_email = "reader@occupancy6.example.net";
    create_user(
        &app,
        &o.admin,
        &o.domain,
        reader_email,
        &[role["key"].as_str().unwrap()],
    )
    .await;
    let reader = token_of(&app, reader_email).await;
    let (status, body) = call(
        &app,
        &reader,
        Method::GET,
        "/api/v1/me/hotdesk/phones?q=Lobby",
        None,
    )
    .await;
    assert_eq!(status, 403, "no hotdesk.self anywhere: {body}");
}

async fn locations_sign_people_out_by_themselves_after_hours_or_daily(app: TestApp) {
    use switchboard_domain::services::scheduler;
    let o = office(&app, "occupancy7.example.net").await;
    let (status, body) = call(
        &app,
        &o.admin,
        Method::PATCH,
        &format!("/api/v1/domains/{}", o.domain),
        Some(json!({"timezone": "UTC"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let locations = format!("/api/v1/domains/{}/locations", o.domain);
    let post = |body: Value| {
        let (app, o, locations) = (&app, &o, &locations);
        async move { call(app, &o.admin, Method::POST, locations, Some(body)).await }
    };

    // Refusals first: each names its field.
    for (body, field) in [
        (
            json!({"name": "X", "auto_sign_out": "after_hours"}),
            "auto_sign_out_hours",
        ),
        (
            json!({"name": "X", "auto_sign_out": "after_hours", "auto_sign_out_hours": 169}),
            "auto_sign_out_hours",
        ),
        (
            json!({"name": "X", "auto_sign_out": "daily_at"}),
            "auto_sign_out_at",
        ),
        (
            json!({"name": "X", "auto_sign_out": "daily_at", "auto_sign_out_at": "25:00"}),
            "auto_sign_out_at",
        ),
        (
            json!({"name": "X", "auto_sign_out": "inherit"}),
            "auto_sign_out",
        ),
        (
            json!({"name": "X", "auto_sign_out": "sometimes"}),
            "auto_sign_out",
        ),
        (
            json!({"name": "X", "auto_sign_out_hours": 3}),
            "auto_sign_out_hours",
        ),
    ] {
        let (status, problem) = post(body.clone()).await;
        assert_eq!(status, 422, "{body} → {problem}");
        assert!(
            problem["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{body} → {problem}"
        );
    }

    let t0 = Utc::now();
    let evening = (t0 + Duration::hours(3)).format("%H:%M").to_string();
    let (status, day) =
        post(json!({"name": "Day", "auto_sign_out": "after_hours", "auto_sign_out_hours": 8}))
            .await;
    assert_eq!(status, 201, "{day}");
    assert_eq!(day["auto_sign_out"], "after_hours");
    assert_eq!(day["auto_sign_out_hours"], 8);
    assert_eq!(day["auto_sign_out_at"], Value::Null);
    let (status, eve) =
        post(json!({"name": "Evening", "auto_sign_out": "daily_at", "auto_sign_out_at": evening}))
            .await;
    assert_eq!(status, 201, "{eve}");
    let (_, always) = post(json!({"name": "Always"})).await;
    assert_eq!(always["auto_sign_out"], "never", "the default");
    o.sign_in(&app, 0, day["id"].as_str().unwrap()).await;
    o.sign_in(&app, 1, eve["id"].as_str().unwrap()).await;
    o.sign_in(&app, 2, always["id"].as_str().unwrap()).await;
    let t0 = Utc::now();
    let signed = || o.numbers(&app, "location-sign-ins", "");

    assert_eq!(
        scheduler::run_once(&app.db, &app.events, t0).await.unwrap(),
        0
    );
    let before_evening = t0 + Duration::hours(2) + Duration::minutes(50);
    assert_eq!(
        scheduler::run_once(&app.db, &app.events, before_evening)
            .await
            .unwrap(),
        0
    );
    assert_eq!(signed().await, ["201", "202", "203"]);
    let mut events = app.events.subscribe();
    let after_evening = t0 + Duration::hours(3) + Duration::minutes(1);
    assert_eq!(
        scheduler::run_once(&app.db, &app.events, after_evening)
            .await
            .unwrap(),
        1
    );
    assert_eq!(signed().await, ["201", "203"]);
    let event = events.try_recv().unwrap();
    assert_eq!(event.kind, ChangeKind::LocationSignedOut);
    assert!(event.sip_users.contains(&"202".to_owned()), "{event:?}");
    let after_eight = t0 + Duration::hours(8) + Duration::minutes(1);
    assert_eq!(
        scheduler::run_once(&app.db, &app.events, after_eight)
            .await
            .unwrap(),
        1
    );
    assert_eq!(signed().await, ["203"]);
    let much_later = t0 + Duration::days(30);
    assert_eq!(
        scheduler::run_once(&app.db, &app.events, much_later)
            .await
            .unwrap(),
        0,
        "a Location that never signs out keeps its people"
    );
    assert_eq!(signed().await, ["203"]);

    // Audited as the scheduler, saying why.
    let outs = o.audit(&app, "location.sign_out").await;
    assert_eq!(outs.len(), 2, "{outs:?}");
    assert!(outs.iter().all(|e| e["after"]["reason"] == "auto_sign_out"
        && e["actor"]["kind"] == "system"
        && e["actor"]["label"] == scheduler::ACTOR_LABEL));
    let whys: Vec<&str> = outs
        .iter()
        .map(|e| e["after"]["why"].as_str().unwrap())
        .collect();
    assert!(whys.contains(&"auto sign-out (after 8 hours)"), "{whys:?}");
    assert!(
        whys.contains(&format!("auto sign-out (daily at {evening})").as_str()),
        "{whys:?}"
    );

    // Back to never: the hours go with the policy.
    let (status, changed) = call(
        &app,
        &o.admin,
        Method::PATCH,
        &format!("{locations}/{}", day["id"].as_str().unwrap()),
        Some(json!({"auto_sign_out": "never"})),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["auto_sign_out"], "never");
    assert_eq!(changed["auto_sign_out_hours"], Value::Null);
}

/// The short code people dial after `*14` (the live suite dials it): 1–6 digits, unique in
/// the Domain, reusable in another Domain, removable.
async fn a_locations_short_code_is_digits_and_unique_in_its_domain(app: TestApp) {
    let o = office(&app, "occupancy8.example.net").await;
    let location = |id: &str| format!("/api/v1/domains/{}/locations/{id}", o.domain);
    let patch = |id: String, body: Value| {
        let (app, o) = (&app, &o);
        async move { call(app, &o.admin, Method::PATCH, &location(&id), Some(body)).await }
    };
    let (status, north) = patch(o.north.clone(), json!({"short_code": " 412 "})).await;
    assert_eq!(status, 200, "{north}");
    assert_eq!(north["short_code"], "412", "trimmed");
    for bad in ["41a", "1234567", "*14", "-1"] {
        let (status, problem) = patch(o.south.clone(), json!({"short_code": bad})).await;
        assert_eq!(status, 422, "{bad}: {problem}");
        assert_eq!(problem["errors"][0]["field"], "short_code", "{problem}");
    }
    // Taken in this Domain: 409 on the field, on both databases.
    let (status, problem) = patch(o.south.clone(), json!({"short_code": "412"})).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "already_exists", "{problem}");
    let (status, _) = patch(o.south.clone(), json!({"short_code": "413"})).await;
    assert_eq!(status, 200);
    // Another Domain may use the same code.
    let other = office(&app, "occupancy8-other.example.net").await;
    let (status, body) = call(
        &app,
        &other.admin,
        Method::PATCH,
        &format!("/api/v1/domains/{}/locations/{}", other.domain, other.north),
        Some(json!({"short_code": "412"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // null (or blank) removes it, and the code is free again.
    let (_, north) = patch(o.north.clone(), json!({"short_code": null})).await;
    assert_eq!(north["short_code"], Value::Null);
    let (status, south) = patch(o.south.clone(), json!({"short_code": "412"})).await;
    assert_eq!(status, 200, "{south}");
    let (_, south) = patch(o.south.clone(), json!({"short_code": "  "})).await;
    assert_eq!(south["short_code"], Value::Null);
}
