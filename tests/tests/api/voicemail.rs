//! The voicemail messages API's refusals through the real server, without a FreeSWITCH node:
//! who may open which box (permission, tenant, the person's own), bad bodies, and the 503
//! with `Retry-After` while no node can be asked. The messages themselves (list, audio, read
//! marks, delete, move, the lamp) are proven against a real FreeSWITCH in the live suite
//! (`tests/live/voicemail.rs`).

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_tests::{TestApp, both_databases};
use uuid::Uuid;

use crate::devices::{create, domain_with_admin, id_of};
use crate::users::{call, create_user, token_of};

both_databases!(
    a_box_opens_for_voicemail_manage_and_its_own_person_only,
    bad_bodies_are_refused_before_anything_is_asked,
    without_a_connected_node_the_store_answers_503_to_retry,
    box_settings_are_validated_audited_and_scoped_to_the_box_owner,
    greetings_are_uploaded_checked_served_and_deleted with with_storage,
    without_a_storage_folder_greetings_cannot_be_kept,
);

/// A voicemail storage folder of this server's own.
fn with_storage(c: &mut switchboard_tests::Config) {
    c.voicemail.storage_dir = Some(std::env::temp_dir().join(format!(
        "switchboard-vm-storage-{}",
        Uuid::new_v4().simple()
    )));
}

/// A WAV file of `ms` milliseconds of 8 kHz 16-bit mono.
pub(crate) fn wav(ms: u32) -> Vec<u8> {
    let data = 16 * ms;
    let mut b = b"RIFF".to_vec();
    b.extend((36 + data).to_le_bytes());
    b.extend(b"WAVEfmt ");
    b.extend(16u32.to_le_bytes());
    b.extend(1u16.to_le_bytes());
    b.extend(1u16.to_le_bytes());
    b.extend(8000u32.to_le_bytes());
    b.extend(16000u32.to_le_bytes());
    b.extend(2u16.to_le_bytes());
    b.extend(16u16.to_le_bytes());
    b.extend(b"data");
    b.extend(data.to_le_bytes());
    b.extend((0..data).map(|i| (i % 200) as u8));
    b
}

/// Sends the headers of a PUT declaring 10 MiB + 1 byte of audio and a little of it; the
/// answer as text.
async fn too_large_upload(app: &TestApp, token: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: audio/wav\r\nContent-Length: {}\r\n\r\nRIFF",
        10 * 1024 * 1024 + 1
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

async fn upload(
    app: &TestApp,
    token: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let response = app
        .request(Method::PUT, path)
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

struct Office {
    domain: String,
    admin: String,
    alice: String,
    alice_token: String,
    bob: String,
}

async fn office(app: &TestApp, sip: &str) -> Office {
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
            json!({"number": "200", "display_name": "Alice", "user_id": user, "voicemail_enabled": true}),
        )
        .await,
    );
    let bob = id_of(
        &create(
            app,
            &admin,
            &domain,
            "extensions",
            json!({"number": "201", "display_name": "Bob", "voicemail_enabled": true}),
        )
        .await,
    );
    Office {
        domain,
        admin,
        alice,
        alice_token,
        bob,
    }
}

fn box_path(domain: &str, ext: &str) -> String {
    format!("/api/v1/domains/{domain}/extensions/{ext}/voicemail/messages")
}

async fn a_box_opens_for_voicemail_manage_and_its_own_person_only(app: TestApp) {
    let a = office(&app, "one.vm.test").await;
    let b = office(&app, "two.vm.test").await;
    let msg = Uuid::new_v4();
    let bob_box = box_path(&a.domain, &a.bob);
    let email = "boss@two.vm.test";
    create_user(&app, &b.admin, &b.domain, email, &["domain_admin"]).await;
    let other_admin = token_of(&app, email).await;

    // Another Domain's admin: every path of A's boxes is a 404, as if nothing were there.
    for (method, path, body) in [
        (Method::GET, bob_box.clone(), None),
        (Method::GET, format!("{bob_box}/{msg}"), None),
        (Method::GET, format!("{bob_box}/{msg}/audio"), None),
        (
            Method::PATCH,
            format!("{bob_box}/{msg}"),
            Some(json!({"read": true})),
        ),
        (Method::DELETE, format!("{bob_box}/{msg}"), None),
        (
            Method::POST,
            format!("{bob_box}/{msg}/move"),
            Some(json!({"extension_id": a.alice})),
        ),
        // A's Extension under B's Domain: not B's.
        (Method::GET, box_path(&b.domain, &a.bob), None),
    ] {
        let (status, body) = call(&app, &other_admin, method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_eq!(body["code"], "not_found", "{body}");
    }

    // A member (Alice) lacks voicemail.manage: 403 on a box, even her own, through the admin
    // paths; a supervisor reads the call history but not the boxes.
    let (status, body) = call(&app, &a.alice_token, Method::GET, &bob_box, None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "forbidden");
    let email = "watch@one.vm.test";
    create_user(&app, &a.admin, &a.domain, email, &["supervisor"]).await;
    let supervisor = token_of(&app, email).await;
    let (status, _) = call(&app, &supervisor, Method::GET, &bob_box, None).await;
    assert_eq!(status, 403);

    // The person's own paths: Bob's Extension is not Alice's.
    let (status, body) = call(
        &app,
        &a.alice_token,
        Method::GET,
        &format!("/api/v1/me/voicemail/messages?extension_id={}", a.bob),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");

    // An API key has no boxes of its own: an empty list, without asking FreeSWITCH.
    let (status, key) = call(
        &app,
        &a.admin,
        Method::POST,
        &format!("/api/v1/domains/{}/api-keys", a.domain),
        Some(json!({"name": "vm", "role": "domain_admin"})),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let secret = key["secret"].as_str().unwrap().to_owned();
    let (status, body) = call(
        &app,
        &secret,
        Method::GET,
        "/api/v1/me/voicemail/messages",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"items": [], "unread": 0}));

    // Nobody signed in: 401.
    let response = app.request(Method::GET, &bob_box).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let response = app
        .request(Method::GET, "/api/v1/me/voicemail/messages")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
}

async fn bad_bodies_are_refused_before_anything_is_asked(app: TestApp) {
    let a = office(&app, "bodies.vm.test").await;
    let msg = Uuid::new_v4();
    let bob_box = box_path(&a.domain, &a.bob);
    for (method, path, body) in [
        (Method::PATCH, format!("{bob_box}/{msg}"), json!({})),
        (
            Method::PATCH,
            format!("{bob_box}/{msg}"),
            json!({"read": "yes"}),
        ),
        (
            Method::PATCH,
            format!("{bob_box}/{msg}"),
            json!({"read": true, "folder": "x"}),
        ),
        (Method::POST, format!("{bob_box}/{msg}/move"), json!({})),
        (
            Method::POST,
            format!("{bob_box}/{msg}/move"),
            json!({"extension_id": "not-a-uuid"}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/me/voicemail/messages/{msg}"),
            json!({"read": 1}),
        ),
    ] {
        let (status, body) = call(&app, &a.admin, method.clone(), &path, Some(body)).await;
        assert!(
            status == 400 || status == 422,
            "{method} {path}: {status} {body}"
        );
    }
    // A message id that is not a uuid never reaches FreeSWITCH.
    let (status, _) = call(
        &app,
        &a.admin,
        Method::GET,
        &format!("{bob_box}/msg_1%20x"),
        None,
    )
    .await;
    assert_eq!(status, 404);
}

async fn without_a_connected_node_the_store_answers_503_to_retry(app: TestApp) {
    let a = office(&app, "down.vm.test").await;
    let msg = Uuid::new_v4();
    let bob_box = box_path(&a.domain, &a.bob);
    for (token, method, path, body) in [
        (&a.admin, Method::GET, bob_box.clone(), None),
        (&a.admin, Method::GET, format!("{bob_box}/{msg}"), None),
        (
            &a.admin,
            Method::GET,
            format!("{bob_box}/{msg}/audio"),
            None,
        ),
        (
            &a.admin,
            Method::PATCH,
            format!("{bob_box}/{msg}"),
            Some(json!({"read": true})),
        ),
        (&a.admin, Method::DELETE, format!("{bob_box}/{msg}"), None),
        (
            &a.alice_token,
            Method::GET,
            "/api/v1/me/voicemail/messages".to_owned(),
            None,
        ),
        (
            &a.alice_token,
            Method::DELETE,
            format!("/api/v1/me/voicemail/messages/{msg}"),
            None,
        ),
    ] {
        let response = app
            .send_as(token, method.clone(), &path, body.as_ref())
            .await;
        assert_eq!(response.status().as_u16(), 503, "{method} {path}");
        assert!(
            response.headers().get("retry-after").is_some(),
            "{method} {path}: Retry-After"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "voicemail_unavailable", "{body}");
    }
    // Nothing was audited: no change reached the store.
    let (_, audit) = call(
        &app,
        &a.admin,
        Method::GET,
        &format!(
            "/api/v1/domains/{}/audit?action=voicemail.message.delete",
            a.domain
        ),
        None,
    )
    .await;
    assert_eq!(audit["items"], json!([]), "{audit}");
}

async fn box_settings_are_validated_audited_and_scoped_to_the_box_owner(app: TestApp) {
    let a = office(&app, "settings.vm.test").await;
    let b = office(&app, "other.vm.test").await;
    let bob = format!(
        "/api/v1/domains/{}/extensions/{}/voicemail",
        a.domain, a.bob
    );

    // The defaults, before anything is saved.
    let (status, defaults) = call(&app, &a.admin, Method::GET, &bob, None).await;
    assert_eq!(status, 200, "{defaults}");
    assert_eq!(
        defaults,
        json!({"extension_id": a.bob, "mailbox": "201", "enabled": true, "email": null,
               "attach_audio": true, "delete_after_email": false, "max_messages": null})
    );

    // Refused: a bad address, deleting after e-mail without one, an unknown field, a wrong type.
    for (body, field) in [
        (json!({"email": "not an address"}), "email"),
        (json!({"email": "a@b"}), "email"),
        (json!({"delete_after_email": true}), "delete_after_email"),
        (
            json!({"email": "", "delete_after_email": true}),
            "delete_after_email",
        ),
    ] {
        let (status, problem) = call(&app, &a.admin, Method::PUT, &bob, Some(body.clone())).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    for body in [
        json!({"email": "x@example.com", "mailto": "y"}),
        json!({"attach_audio": "yes"}),
    ] {
        let (status, _) = call(&app, &a.admin, Method::PUT, &bob, Some(body)).await;
        assert!(status == 400 || status == 422, "{status}");
    }
    let (_, unchanged) = call(&app, &a.admin, Method::GET, &bob, None).await;
    assert_eq!(unchanged, defaults, "nothing half-saved");

    // Saved, normalised, audited.
    let (status, saved) = call(
        &app,
        &a.admin,
        Method::PUT,
        &bob,
        Some(json!({"email": " Bob@Example.com ", "attach_audio": false, "delete_after_email": true, "max_messages": 20})),
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["max_messages"], 20);
    assert_eq!(saved["email"], "bob@example.com");
    assert_eq!(saved["attach_audio"], false);
    assert_eq!(saved["delete_after_email"], true);
    let (_, audit) = call(
        &app,
        &a.admin,
        Method::GET,
        &format!(
            "/api/v1/domains/{}/audit?action=voicemail.box.update",
            a.domain
        ),
        None,
    )
    .await;
    assert_eq!(audit["items"].as_array().map_or(0, Vec::len), 1, "{audit}");

    // Another Domain's admin: 404; a member: 403 on the admin paths.
    let email = "boss@other.vm.test";
    create_user(&app, &b.admin, &b.domain, email, &["domain_admin"]).await;
    let other_admin = token_of(&app, email).await;
    for (method, path, body) in [
        (Method::GET, bob.clone(), None),
        (
            Method::PUT,
            bob.clone(),
            Some(json!({"email": "evil@example.com"})),
        ),
        (Method::GET, format!("{bob}/emails"), None),
        (
            Method::POST,
            format!("{bob}/emails/{}/retry", Uuid::now_v7()),
            None,
        ),
    ] {
        let (status, body) = call(&app, &other_admin, method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
    }
    let (status, _) = call(&app, &a.alice_token, Method::GET, &bob, None).await;
    assert_eq!(status, 403);

    // The person: their own boxes only.
    let (status, mine) = call(
        &app,
        &a.alice_token,
        Method::GET,
        "/api/v1/me/voicemail/boxes",
        None,
    )
    .await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine[0]["extension_id"], a.alice);
    let (status, saved) = call(
        &app,
        &a.alice_token,
        Method::PUT,
        &format!("/api/v1/me/voicemail/boxes/{}", a.alice),
        Some(json!({"email": "alice@example.com"})),
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["email"], "alice@example.com");
    let (status, _) = call(
        &app,
        &a.alice_token,
        Method::PUT,
        &format!("/api/v1/me/voicemail/boxes/{}", a.bob),
        Some(json!({"email": "alice@example.com"})),
    )
    .await;
    assert_eq!(status, 404, "Bob's box is not Alice's");
    let (_, bobs) = call(&app, &a.admin, Method::GET, &bob, None).await;
    assert_eq!(bobs["email"], "bob@example.com");
}

async fn greetings_are_uploaded_checked_served_and_deleted(app: TestApp) {
    let a = office(&app, "greet.vm.test").await;
    let b = office(&app, "greet-other.vm.test").await;
    let greetings = format!(
        "/api/v1/domains/{}/extensions/{}/voicemail/greetings",
        a.domain, a.bob
    );
    let (status, none) = call(&app, &a.admin, Method::GET, &greetings, None).await;
    assert_eq!(status, 200, "{none}");
    assert_eq!(
        none.as_array()
            .unwrap()
            .iter()
            .map(|g| (
                g["kind"].as_str().unwrap().to_owned(),
                g["present"].as_bool().unwrap()
            ))
            .collect::<Vec<_>>(),
        [
            ("standard".to_owned(), false),
            ("unavailable".to_owned(), false),
            ("busy".to_owned(), false),
            ("name".to_owned(), false)
        ]
    );

    // The busy greeting: stored where FreeSWITCH's mod_voicemail keeps the box's files.
    let audio = wav(1500);
    let (status, stored) = upload(
        &app,
        &a.admin,
        &format!("{greetings}/busy"),
        "audio/wav",
        audio.clone(),
    )
    .await;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(
        stored,
        json!({"kind": "busy", "present": true, "size_bytes": audio.len()})
    );
    let (_, listed) = call(&app, &a.admin, Method::GET, &greetings, None).await;
    assert_eq!(listed[2]["present"], true, "{listed}");
    let served = app
        .send_as(&a.admin, Method::GET, &format!("{greetings}/busy"), None)
        .await;
    assert_eq!(served.status().as_u16(), 200);
    assert_eq!(served.headers()["content-type"], "audio/wav");
    assert_eq!(served.bytes().await.unwrap().to_vec(), audio);

    // Refused: not audio/wav, not a WAV file FreeSWITCH plays, an unknown kind, too large.
    let (status, body) = upload(
        &app,
        &a.admin,
        &format!("{greetings}/busy"),
        "text/plain",
        audio.clone(),
    )
    .await;
    assert_eq!(status, 415, "{body}");
    for bad in [b"not a wav file at all".to_vec(), wav(0), {
        let mut long = wav(1000);
        long[24..28].copy_from_slice(&4000u32.to_le_bytes());
        long
    }] {
        let (status, body) = upload(
            &app,
            &a.admin,
            &format!("{greetings}/unavailable"),
            "audio/wav",
            bad,
        )
        .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["errors"][0]["code"], "invalid_audio", "{body}");
    }
    let (status, _) = upload(
        &app,
        &a.admin,
        &format!("{greetings}/jingle"),
        "audio/wav",
        audio.clone(),
    )
    .await;
    assert_eq!(status, 404);
    // Larger than 10 MiB: refused from the declared length, before the body is read.
    let head = too_large_upload(&app, &a.admin, &format!("{greetings}/unavailable")).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("payload_too_large"), "{head}");
    let (_, listed) = call(&app, &a.admin, Method::GET, &greetings, None).await;
    assert_eq!(
        listed[1]["present"], false,
        "nothing refused was kept: {listed}"
    );

    // The standard greeting needs mod_voicemail told: with no node connected it is refused and
    // the file is not left behind.
    let (status, body) = upload(
        &app,
        &a.admin,
        &format!("{greetings}/standard"),
        "audio/wav",
        audio.clone(),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    let (_, listed) = call(&app, &a.admin, Method::GET, &greetings, None).await;
    assert_eq!(listed[0]["present"], false, "{listed}");

    // Another Domain's admin: 404; a member: 403; the person on their own box only.
    let email = "boss@greet-other.vm.test";
    create_user(&app, &b.admin, &b.domain, email, &["domain_admin"]).await;
    let other_admin = token_of(&app, email).await;
    let (status, _) = upload(
        &app,
        &other_admin,
        &format!("{greetings}/busy"),
        "audio/wav",
        audio.clone(),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &app,
        &other_admin,
        Method::GET,
        &format!("{greetings}/busy"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = upload(
        &app,
        &a.alice_token,
        &format!("{greetings}/busy"),
        "audio/wav",
        audio.clone(),
    )
    .await;
    assert_eq!(status, 403);
    let mine = format!("/api/v1/me/voicemail/boxes/{}/greetings", a.alice);
    let (status, stored) = upload(
        &app,
        &a.alice_token,
        &format!("{mine}/unavailable"),
        "audio/wav",
        audio.clone(),
    )
    .await;
    assert_eq!(status, 200, "{stored}");
    let (_, listed) = call(&app, &a.alice_token, Method::GET, &mine, None).await;
    assert_eq!(listed[1]["present"], true, "{listed}");
    let (status, _) = upload(
        &app,
        &a.alice_token,
        &format!("/api/v1/me/voicemail/boxes/{}/greetings/busy", a.bob),
        "audio/wav",
        audio.clone(),
    )
    .await;
    assert_eq!(status, 404, "Bob's box is not Alice's");
    let (status, _) = call(
        &app,
        &a.alice_token,
        Method::DELETE,
        &format!("{mine}/unavailable"),
        None,
    )
    .await;
    assert_eq!(status, 204);

    // Deleted once; then there is nothing to delete.
    let (status, _) = call(
        &app,
        &a.admin,
        Method::DELETE,
        &format!("{greetings}/busy"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(
        &app,
        &a.admin,
        Method::DELETE,
        &format!("{greetings}/busy"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (_, audit) = call(
        &app,
        &a.admin,
        Method::GET,
        &format!(
            "/api/v1/domains/{}/audit?action=voicemail.greeting.upload",
            a.domain
        ),
        None,
    )
    .await;
    assert_eq!(audit["items"].as_array().map_or(0, Vec::len), 2, "{audit}");
    // Each deletion audited once (the second, a 404, deleted nothing), by whoever did it.
    let (_, audit) = call(
        &app,
        &a.admin,
        Method::GET,
        &format!(
            "/api/v1/domains/{}/audit?action=voicemail.greeting.delete",
            a.domain
        ),
        None,
    )
    .await;
    let items = audit["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 2, "{audit}");
    let mut kinds: Vec<&str> = items
        .iter()
        .map(|e| e["before"]["kind"].as_str().unwrap_or(""))
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["busy", "unavailable"], "{audit}");
}

async fn without_a_storage_folder_greetings_cannot_be_kept(app: TestApp) {
    let a = office(&app, "nostore.vm.test").await;
    let greetings = format!(
        "/api/v1/domains/{}/extensions/{}/voicemail/greetings",
        a.domain, a.bob
    );
    let (status, body) = call(&app, &a.admin, Method::GET, &greetings, None).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "not_configured");
    let (status, body) = upload(
        &app,
        &a.admin,
        &format!("{greetings}/busy"),
        "audio/wav",
        wav(500),
    )
    .await;
    assert_eq!(status, 409, "{body}");
}
