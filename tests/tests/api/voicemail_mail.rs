//! Voicemail to e-mail through the real server: mod_voicemail's `leave-message` event (the
//! captured frame) arrives from a scripted FreeSWITCH node, the e-mail is queued once however
//! often the event comes, and a real SMTP server (`switchboard_tests::smtp`) receives it with
//! the audio; a refusing server gets retries until the e-mail is given up, visibly, and
//! retried on demand; a box that deletes after e-mail sends `vm_delete` once sent.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_api::config::MailTls;
use switchboard_tests::smtp::SmtpSink;
use switchboard_tests::{Backend, TestApp};
use uuid::Uuid;

use crate::bridge::{Conn, NO_REGISTRATIONS, app_with_switch_and, bridge_scenarios, eventually};
use crate::devices::{create, domain_with_admin, id_of};
use crate::users::call;

bridge_scenarios!(
    a_new_message_is_emailed_once_with_its_audio_and_deleted_when_the_box_says_so,
    a_refused_email_is_retried_then_given_up_and_retried_on_demand,
    without_an_smtp_server_the_email_fails_at_once_saying_why,
    a_full_box_lets_its_oldest_read_message_go,
);

const SIP: &str = "acme.example.net";
/// The captured event: 200 left 4 s in 201's box.
const EVENT: &str = "event-plain-vm-maintenance-leave-message.txt";
const MESSAGE: &str = "e74995e5-d421-47db-9d74-6719d1171a4a";
const FILE: &str = "msg_b50042b8-6e71-4fe6-a306-780f33bd77e3.wav";

struct Office {
    app: TestApp,
    conn: Conn,
    admin: String,
    domain: String,
    ext: String,
    storage: PathBuf,
}

async fn office(backend: Backend, sink: Option<&SmtpSink>) -> Office {
    let storage = std::env::temp_dir().join(format!("switchboard-vm-{}", Uuid::new_v4().simple()));
    let port = sink.map(|s| s.port);
    let dir = storage.clone();
    let (app, switch) = app_with_switch_and(backend, move |c| {
        c.voicemail.storage_dir = Some(dir);
        if let Some(port) = port {
            c.mail.smtp_host = Some("127.0.0.1".to_owned());
            c.mail.smtp_port = port;
            c.mail.tls = MailTls::None;
        }
        c.mail.from = "Voicemail <voicemail@switchboard.test>".to_owned();
        c.mail.poll_interval_secs = 1;
        c.mail.retry_initial_secs = 1;
        c.mail.retry_max_secs = 1;
        c.mail.max_attempts = 3;
        c.mail.timeout_secs = 3;
    })
    .await;
    let mut conn = switch.accept().await;
    conn.resync(NO_REGISTRATIONS).await;
    let (domain, admin) = domain_with_admin(&app, SIP).await;
    let ext = id_of(
        &create(
            &app,
            &admin,
            &domain,
            "extensions",
            json!({"number": "201", "display_name": "Alice", "voicemail_enabled": true}),
        )
        .await,
    );
    // What creating the Extension sent the node (directory flush, mirror): answered now, so
    // nothing waits on the command connection while the e-mails are sent.
    drain(&mut conn).await;
    Office {
        app,
        conn,
        admin,
        domain,
        ext,
        storage,
    }
}

/// Answers every command the bridge sends until it has been quiet for a moment.
async fn drain(conn: &mut Conn) {
    while let Ok(Ok(command)) =
        tokio::time::timeout(Duration::from_millis(800), conn.conn.read_command()).await
    {
        if command.starts_with("sendevent ") {
            conn.conn.reply_raw_text("+OK 1").await.unwrap();
        } else {
            conn.conn.reply_api("+OK\n").await.unwrap();
        }
    }
}

impl Office {
    fn box_path(&self) -> String {
        format!(
            "/api/v1/domains/{}/extensions/{}/voicemail",
            self.domain, self.ext
        )
    }

    async fn set_box(&self, body: Value) -> Value {
        let (status, saved) = call(
            &self.app,
            &self.admin,
            Method::PUT,
            &self.box_path(),
            Some(body),
        )
        .await;
        assert_eq!(status, 200, "{saved}");
        saved
    }

    /// The message's audio where the node's storage folder is mounted.
    fn write_audio(&self, bytes: &[u8]) {
        let dir = self.storage.join(format!("voicemail/default/{SIP}/201"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(FILE), bytes).unwrap();
    }

    async fn emails(&self) -> Value {
        let (status, body) = call(
            &self.app,
            &self.admin,
            Method::GET,
            &format!("{}/emails", self.box_path()),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn emails_until(&self, done: impl Fn(&Value) -> bool) -> Value {
        eventually(
            &self.app,
            &self.admin,
            &format!("{}/emails", self.box_path()),
            done,
        )
        .await
    }
}

fn wav() -> Vec<u8> {
    let mut bytes = b"RIFF\x24\x08\x00\x00WAVEfmt ".to_vec();
    bytes.extend((0..2048u32).map(|i| (i % 251) as u8));
    bytes
}

async fn a_new_message_is_emailed_once_with_its_audio_and_deleted_when_the_box_says_so(
    backend: Backend,
) {
    let sink = SmtpSink::start();
    let mut o = office(backend, Some(&sink)).await;
    let saved = o.set_box(json!({"email": " Alice@Example.COM "})).await;
    assert_eq!(saved["email"], "alice@example.com", "{saved}");
    assert_eq!(saved["attach_audio"], true);
    assert_eq!(saved["delete_after_email"], false);
    o.write_audio(&wav());

    // The event twice (a reconnect, or a second switchboard node hearing it too): one e-mail.
    o.conn.send_fixture(EVENT, &[]).await;
    o.conn.send_fixture(EVENT, &[]).await;
    let got = sink.wait_for(1).await;
    let mail = &got[0];
    assert_eq!(mail.to, ["alice@example.com"], "{mail:?}");
    assert!(
        mail.data
            .contains("Subject: Voicemail from Ext 200 <200> (0:04) in box 201"),
        "{}",
        mail.data
    );
    assert!(
        mail.data
            .contains("From: Voicemail <voicemail@switchboard.test>"),
        "{}",
        mail.data
    );
    assert!(
        mail.data.contains("Content-Type: audio/wav"),
        "{}",
        mail.data
    );
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&wav()[..48]);
    let body: String = mail.data.lines().map(str::trim).collect();
    assert!(
        body.contains(&encoded[..60]),
        "the audio is attached: {}",
        mail.data
    );
    let emails = o.emails_until(|b| b["items"][0]["status"] == "sent").await;
    assert_eq!(emails["items"].as_array().unwrap().len(), 1, "{emails}");
    let email = &emails["items"][0];
    assert_eq!(email["message_id"], MESSAGE);
    assert_eq!(email["to"], "alice@example.com");
    assert_eq!(email["caller_number"], "200");
    assert_eq!(email["duration_secs"], 4);
    assert_eq!(email["attempts"], 1);
    assert!(
        email["sent_at"].is_string() && email["last_error"].is_null(),
        "{email}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.messages().len(), 1, "sent once");

    // Without the audio, and deleted from the box once sent: the bridge asks mod_voicemail.
    o.set_box(
        json!({"email": "alice@example.com", "attach_audio": false, "delete_after_email": true}),
    )
    .await;
    let second = Uuid::new_v4().to_string();
    o.conn.send_fixture(EVENT, &[(MESSAGE, &second)]).await;
    let deleted = o.conn.api().await;
    assert_eq!(deleted, format!("vm_delete 201@{SIP} {second}"));
    let got = sink.wait_for(2).await;
    assert!(!got[1].data.contains("audio/wav"), "{}", got[1].data);
    assert!(got[1].data.contains("Dial *97"), "{}", got[1].data);
    let emails = o.emails_until(|b| b["items"][0]["status"] == "sent").await;
    assert_eq!(emails["items"][0]["message_id"], second.as_str());
    assert_eq!(emails["items"][0]["delete_after"], true);
    assert!(emails["items"][0]["last_error"].is_null(), "{emails}");
}

async fn a_refused_email_is_retried_then_given_up_and_retried_on_demand(backend: Backend) {
    let sink = SmtpSink::start();
    let mut o = office(backend, Some(&sink)).await;
    o.set_box(json!({"email": "alice@example.com"})).await;
    // No audio where it should be: the e-mail goes without it, saying why.
    sink.refuse(true);
    o.conn.send_fixture(EVENT, &[]).await;
    let emails = o
        .emails_until(|b| b["items"][0]["status"] == "failed")
        .await;
    let email = &emails["items"][0];
    assert_eq!(email["attempts"], 3, "{email}");
    assert!(
        email["last_error"].as_str().unwrap().contains("451"),
        "the server's answer is kept: {email}"
    );
    assert!(email["next_attempt_at"].is_null());
    assert!(sink.messages().is_empty());

    // Retried on demand once the server takes mail again; a sent one is not retried.
    sink.refuse(false);
    let id = email["id"].as_str().unwrap().to_owned();
    let retry = format!("{}/emails/{id}/retry", o.box_path());
    let (status, queued) = call(&o.app, &o.admin, Method::POST, &retry, None).await;
    assert_eq!(status, 200, "{queued}");
    assert_eq!(queued["status"], "pending");
    assert_eq!(queued["attempts"], 0);
    let got = sink.wait_for(1).await;
    assert!(
        got[0].data.contains("could not be attached"),
        "{}",
        got[0].data
    );
    o.emails_until(|b| b["items"][0]["status"] == "sent").await;
    let (status, body) = call(&o.app, &o.admin, Method::POST, &retry, None).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "not_failed");
    let (status, _) = call(
        &o.app,
        &o.admin,
        Method::POST,
        &format!("{}/emails/{}/retry", o.box_path(), Uuid::now_v7()),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (_, audit) = call(
        &o.app,
        &o.admin,
        Method::GET,
        &format!(
            "/api/v1/domains/{}/audit?action=voicemail.email.retry",
            o.domain
        ),
        None,
    )
    .await;
    assert_eq!(audit["items"].as_array().map_or(0, Vec::len), 1, "{audit}");
}

async fn without_an_smtp_server_the_email_fails_at_once_saying_why(backend: Backend) {
    let mut o = office(backend, None).await;
    o.set_box(json!({"email": "alice@example.com"})).await;
    // A box without an address queues nothing.
    let other = id_of(
        &create(
            &o.app,
            &o.admin,
            &o.domain,
            "extensions",
            json!({"number": "202", "display_name": "Bob", "voicemail_enabled": true}),
        )
        .await,
    );
    o.conn
        .send_fixture(EVENT, &[("VM-User: 201", "VM-User: 202")])
        .await;
    o.conn.send_fixture(EVENT, &[]).await;
    let emails = o
        .emails_until(|b| b["items"][0]["status"] == "failed")
        .await;
    assert_eq!(emails["items"][0]["attempts"], 1);
    assert!(
        emails["items"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("mail.smtp_host is not set"),
        "{emails}"
    );
    let (status, none) = call(
        &o.app,
        &o.admin,
        Method::GET,
        &format!(
            "/api/v1/domains/{}/extensions/{other}/voicemail/emails",
            o.domain
        ),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(none["items"], json!([]));
    assert_eq!(o.emails().await["items"].as_array().unwrap().len(), 1);
}

async fn a_full_box_lets_its_oldest_read_message_go(backend: Backend) {
    let mut o = office(backend, None).await;
    o.set_box(json!({"max_messages": 2})).await;
    o.conn.send_fixture(EVENT, &[]).await;
    // The bridge lists the box (until the new message shows) ...
    let listing = o.conn.command().await;
    assert_eq!(listing, format!("api vm_list 201@{SIP} text"));
    let now = chrono::Utc::now().timestamp();
    let (old_unread, newer_read) = (Uuid::new_v4(), Uuid::new_v4());
    let line = |created: i64, read: i64, id: &str| {
        format!(
            "{created}:{read}:201:{SIP}:inbox:/s/voicemail/default/{SIP}/201/msg_{id}.wav:{id}:Ext 200:200:4\n"
        )
    };
    let body = [
        line(now, 0, MESSAGE),
        line(now - 200, 0, &old_unread.to_string()),
        line(now - 100, now - 50, &newer_read.to_string()),
    ]
    .concat();
    o.conn.conn.reply_api(&body).await.unwrap();
    // ... and lets the read one go first, though the unread one is older; never the new one.
    let deleted = o.conn.api().await;
    assert_eq!(deleted, format!("vm_delete 201@{SIP} {newer_read}"));
    let audit = eventually(
        &o.app,
        &o.admin,
        &format!(
            "/api/v1/domains/{}/audit?action=voicemail.message.expire",
            o.domain
        ),
        |b| b["items"].as_array().is_some_and(|i| !i.is_empty()),
    )
    .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
    assert_eq!(
        audit["items"][0]["target"]["id"],
        newer_read.to_string(),
        "{audit}"
    );
    // Nothing else was asked of the node.
    assert!(
        tokio::time::timeout(Duration::from_millis(700), o.conn.conn.read_command())
            .await
            .is_err(),
        "only the one message went"
    );
}
