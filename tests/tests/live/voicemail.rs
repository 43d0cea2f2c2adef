//! Voicemail retrieval from a phone (issue 15): `*97` opens the box of whoever the phone calls
//! as, after switchboard (not mod_voicemail) checked the Extension's PIN with the hot-desk
//! lockout; mod_voicemail then plays the messages, already authorised.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::dtmf::Key;
use crate::harness::{EventWatch, Live, Phone};
use crate::sipp_calls::{Callee, Ringing, extension_with_phone, final_answer, register};

const PIN: &str = "246810";

/// mod_voicemail's count of `which` (`new`, `saved`) messages in `box_@sip`.
async fn box_count(live: &Live, box_: &str, sip: &str, which: &str) -> String {
    live.fs
        .api(&format!("vm_boxcount default/{box_}@{sip}|{which}"))
        .await
        .trim()
        .to_owned()
}

/// Waits (up to 5 s) until mod_voicemail counts `want` `which` messages in `box_@sip`; the
/// last count.
async fn box_count_until(live: &Live, box_: &str, sip: &str, which: &str, want: &str) -> String {
    let mut count = String::new();
    for _ in 0..50 {
        count = box_count(live, box_, sip, which).await;
        if count == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn star_97_with_the_pin_plays_my_messages_and_a_wrong_pin_opens_nothing() {
    let live = Live::start().await;
    let sip = "retrieve.vm.live.test";
    let domain = live.domain(sip).await;
    let (_, caller) = extension_with_phone(&live, &domain, "200", json!({})).await;
    let (_, mine) = extension_with_phone(
        &live,
        &domain,
        "204",
        json!({"voicemail_enabled": true, "ring_timeout_secs": 5, "pin": PIN}),
    )
    .await;
    let my_phone = Phone::new(&live.fs, "LiveDesk/204");
    register(&live, &my_phone, &mine).await;

    // A message for 204: nobody answers, the caller speaks.
    let rings = Ringing::start(&live.fs, &my_phone, Callee::Rings, 60).await;
    let call = Phone::new(&live.fs, "LiveCaller/200")
        .dial_press_and_hang_up(&caller, "204", &[Key::Pause(1500), Key::Speak(4500)], 7000)
        .await;
    assert_eq!(final_answer(&call), Some(200), "{}", call.messages);
    rings.finish().await;
    let new = box_count_until(&live, "204", sip, "new", "1").await;
    assert_eq!(new, "1", "one new message");

    // A wrong PIN: the box is not opened, and the failure is audited as voicemail's (the
    // hot-desk lockout's counters).
    let wrong = my_phone
        .dial_press_and_hang_up(&mine, "*97", &[Key::Pause(1000), Key::Press("1111#")], 8000)
        .await;
    assert_eq!(final_answer(&wrong), Some(200), "{}", wrong.messages);
    let mut failures = 0;
    for _ in 0..50 {
        let audit = live
            .get(&format!(
                "/api/v1/domains/{domain}/audit?action=voicemail.pin_failed"
            ))
            .await;
        failures = audit["items"].as_array().map_or(0, Vec::len);
        if failures > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(failures, 1, "the wrong PIN is audited once");
    assert_eq!(box_count(&live, "204", sip, "new").await, "1");

    // The right PIN: mod_voicemail opens the box without asking; 1 plays the new message, 2
    // saves it.
    let listened = my_phone
        .dial_press_and_hang_up(
            &mine,
            "*97",
            &[
                Key::Pause(1000),
                Key::Press("246810#"),
                Key::Pause(2500),
                Key::Press("1"),
                Key::Pause(9000),
                Key::Press("2"),
                Key::Pause(2000),
            ],
            17000,
        )
        .await;
    assert_eq!(final_answer(&listened), Some(200), "{}", listened.messages);
    let saved = box_count_until(&live, "204", sip, "saved", "1").await;
    assert_eq!(saved, "1", "the message was heard and saved");
    assert_eq!(box_count(&live, "204", sip, "new").await, "0");
    let console = live.fs.console();
    assert!(
        !console.contains("voicemail_enter_pass"),
        "mod_voicemail never asked for a password"
    );
}

/// `method path` with `token`: status and JSON body (`Null` when empty).
async fn as_user(
    live: &Live,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let response = live.app.send_as(token, method, path, body.as_ref()).await;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The lamp of `box_@sip` as mod_voicemail announces it (`MESSAGE_WAITING`, which mod_sofia
/// turns into the NOTIFY the phones of that `mwi-account` get).
fn lamp(box_: &str, sip: &str, lit: bool) -> [String; 2] {
    [
        format!("MWI-Message-Account: {box_}%40{sip}"),
        format!("MWI-Messages-Waiting: {}", if lit { "yes" } else { "no" }),
    ]
}

async fn wait_lamp(watch: &EventWatch, box_: &str, sip: &str, lit: bool) {
    let lines = lamp(box_, sip, lit);
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    watch.wait_for(&lines).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_listed_played_marked_moved_and_deleted_through_the_api_with_the_lamp() {
    let live = Live::start().await;
    let sip = "api.vm.live.test";
    let domain = live.domain(sip).await;
    let (status, user) = live
        .call(
            Method::POST,
            &format!("/api/v1/domains/{domain}/users"),
            Some(
                json!({"email": "dana@api.vm.live.test", "display_name": "Dana",
                        "password": "a long enough password 1", "roles": ["member"]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    let dana = live
        .app
        .login("dana@api.vm.live.test", "a long enough password 1")
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, caller) = extension_with_phone(&live, &domain, "200", json!({})).await;
    let (mine, my_creds) = extension_with_phone(
        &live,
        &domain,
        "204",
        json!({"voicemail_enabled": true, "ring_timeout_secs": 5, "pin": PIN,
               "user_id": user["id"]}),
    )
    .await;
    let colleague = live
        .create(
            &domain,
            "extensions",
            json!({"number": "205", "display_name": "Colleague", "voicemail_enabled": true}),
        )
        .await;
    let (mine, colleague) = (
        mine["id"].as_str().unwrap().to_owned(),
        colleague["id"].as_str().unwrap().to_owned(),
    );
    let my_box = format!("/api/v1/domains/{domain}/extensions/{mine}/voicemail/messages");
    let their_box = format!("/api/v1/domains/{domain}/extensions/{colleague}/voicemail/messages");
    let my_phone = Phone::new(&live.fs, "LiveDesk/204");
    register(&live, &my_phone, &my_creds).await;
    let lamps = live.fs.watch("MESSAGE_WAITING").await;

    // An empty box lists nothing.
    assert_eq!(live.get(&my_box).await, json!({"items": [], "unread": 0}));

    // A message for 204: nobody answers, the caller speaks; the lamp lights.
    let rings = Ringing::start(&live.fs, &my_phone, Callee::Rings, 60).await;
    let call = Phone::new(&live.fs, "LiveCaller/200")
        .dial_press_and_hang_up(&caller, "204", &[Key::Pause(1500), Key::Speak(4500)], 7000)
        .await;
    assert_eq!(final_answer(&call), Some(200), "{}", call.messages);
    rings.finish().await;
    wait_lamp(&lamps, "204", sip, true).await;

    // Listed for the admin and for Dana, with the caller, the time and the length.
    let listed = live.get(&my_box).await;
    assert_eq!(listed["unread"], 1, "{listed}");
    let message = listed["items"][0].clone();
    let id = message["id"].as_str().unwrap().to_owned();
    assert_eq!(message["caller_number"], "200", "{message}");
    assert_eq!(message["mailbox"], "204");
    assert_eq!(message["extension_id"], mine);
    assert_eq!(message["read"], false);
    assert!(message["duration_secs"].as_u64().unwrap() >= 3, "{message}");
    let (status, own) = as_user(
        &live,
        &dana,
        Method::GET,
        "/api/v1/me/voicemail/messages",
        None,
    )
    .await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["items"][0]["id"], id.as_str());

    // The audio: a WAV, whole or by range, for the admin and for Dana.
    let audio = live
        .app
        .send_as(
            &live.admin,
            Method::GET,
            &format!("{my_box}/{id}/audio"),
            None,
        )
        .await;
    assert_eq!(audio.status().as_u16(), 200);
    assert_eq!(audio.headers()["content-type"], "audio/wav");
    let bytes = audio.bytes().await.unwrap();
    assert_eq!(&bytes[..4], b"RIFF");
    assert!(
        bytes.len() > 8000 * 2,
        "about three seconds or more: {} bytes",
        bytes.len()
    );
    let part = live
        .app
        .request(
            Method::GET,
            &format!("/api/v1/me/voicemail/messages/{id}/audio"),
        )
        .bearer_auth(&dana)
        .header("Range", "bytes=0-3")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status().as_u16(), 206);
    assert_eq!(&part.bytes().await.unwrap()[..], b"RIFF");

    // Dana marks it read: the lamp goes out; the admin marks it unread: it lights again.
    let (status, read) = as_user(
        &live,
        &dana,
        Method::PATCH,
        &format!("/api/v1/me/voicemail/messages/{id}"),
        Some(json!({"read": true})),
    )
    .await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["read"], true);
    assert!(read["read_at"].is_string());
    wait_lamp(&lamps, "204", sip, false).await;
    let (status, unread) = live
        .call(
            Method::PATCH,
            &format!("{my_box}/{id}"),
            Some(json!({"read": false})),
        )
        .await;
    assert_eq!(status, 200, "{unread}");
    assert_eq!(unread["read"], false);
    wait_lamp(&lamps, "204", sip, true).await;

    // Dana moves it to her colleague's box: gone from hers (lamp out), new in theirs (lit),
    // the caller kept.
    let (status, body) = as_user(
        &live,
        &dana,
        Method::POST,
        &format!("/api/v1/me/voicemail/messages/{id}/move"),
        Some(json!({"extension_id": colleague})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    wait_lamp(&lamps, "205", sip, true).await;
    wait_lamp(&lamps, "204", sip, false).await;
    assert_eq!(live.get(&my_box).await["items"], json!([]));
    let theirs = live.get(&their_box).await;
    assert_eq!(theirs["unread"], 1, "{theirs}");
    let moved = theirs["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(theirs["items"][0]["caller_number"], "200");
    // The old id is nowhere now; Dana cannot reach the colleague's box.
    let (status, _) = live
        .call(Method::GET, &format!("{my_box}/{id}"), None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = as_user(
        &live,
        &dana,
        Method::GET,
        &format!("/api/v1/me/voicemail/messages/{moved}"),
        None,
    )
    .await;
    assert_eq!(status, 404);

    // The admin deletes it: the box is empty, the file gone, the lamp out, both audited.
    let folder = live
        .fs
        .run
        .join(format!("storage/voicemail/default/{sip}/205"));
    let messages_on_disk = || {
        std::fs::read_dir(&folder)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with("msg_"))
                    .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(messages_on_disk(), 1, "{}", folder.display());
    let (status, body) = live
        .call(Method::DELETE, &format!("{their_box}/{moved}"), None)
        .await;
    assert_eq!(status, 204, "{body}");
    wait_lamp(&lamps, "205", sip, false).await;
    assert_eq!(
        live.get(&their_box).await,
        json!({"items": [], "unread": 0})
    );
    assert_eq!(
        messages_on_disk(),
        0,
        "the audio is deleted with the message"
    );
    let (status, _) = live
        .call(Method::DELETE, &format!("{their_box}/{moved}"), None)
        .await;
    assert_eq!(status, 404, "deleting twice finds nothing");
    for action in ["voicemail.message.move", "voicemail.message.delete"] {
        let audit = live
            .get(&format!("/api/v1/domains/{domain}/audit?action={action}"))
            .await;
        assert_eq!(
            audit["items"].as_array().map_or(0, Vec::len),
            1,
            "{action}: {audit}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_left_on_the_real_switch_is_emailed_with_its_audio() {
    let sink = switchboard_tests::smtp::SmtpSink::start();
    let port = sink.port;
    let live = Live::start_with(move |c| {
        c.mail.smtp_host = Some("127.0.0.1".to_owned());
        c.mail.smtp_port = port;
        c.mail.tls = switchboard_api::config::MailTls::None;
        c.mail.from = "Voicemail <voicemail@mail.vm.live.test>".to_owned();
        c.mail.poll_interval_secs = 1;
    })
    .await;
    let sip = "mail.vm.live.test";
    let domain = live.domain(sip).await;
    let (_, caller) = extension_with_phone(&live, &domain, "200", json!({})).await;
    let (mine, my_creds) = extension_with_phone(
        &live,
        &domain,
        "204",
        json!({"voicemail_enabled": true, "ring_timeout_secs": 5, "pin": PIN}),
    )
    .await;
    let mine = mine["id"].as_str().unwrap().to_owned();
    let settings = format!("/api/v1/domains/{domain}/extensions/{mine}/voicemail");
    let (status, saved) = live
        .call(
            Method::PUT,
            &settings,
            Some(json!({"email": "dana@mail.vm.live.test", "attach_audio": true})),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    let my_phone = Phone::new(&live.fs, "LiveDesk/204");
    register(&live, &my_phone, &my_creds).await;

    let rings = Ringing::start(&live.fs, &my_phone, Callee::Rings, 60).await;
    let call = Phone::new(&live.fs, "LiveCaller/200")
        .dial_press_and_hang_up(&caller, "204", &[Key::Pause(1500), Key::Speak(4500)], 7000)
        .await;
    assert_eq!(final_answer(&call), Some(200), "{}", call.messages);
    rings.finish().await;

    // The e-mail: to the box's address, naming the caller, with the very audio the API serves.
    let mail = sink.wait_for(1).await.remove(0);
    assert_eq!(mail.to, ["dana@mail.vm.live.test"]);
    assert!(
        mail.data.contains("Subject: Voicemail from Ext 200 <200>"),
        "{}",
        mail.data
    );
    assert!(mail.data.contains("in box 204"), "{}", mail.data);
    assert!(
        mail.data.contains("Content-Type: audio/wav"),
        "{}",
        mail.data
    );
    let box_ = format!("{settings}/messages");
    let message = live.get(&box_).await["items"][0].clone();
    let id = message["id"].as_str().unwrap().to_owned();
    let audio = live
        .app
        .send_as(
            &live.admin,
            Method::GET,
            &format!("{box_}/{id}/audio"),
            None,
        )
        .await
        .bytes()
        .await
        .unwrap();
    use base64::Engine as _;
    let attached: String = mail
        .data
        .split("Content-Transfer-Encoding: base64")
        .nth(1)
        .unwrap()
        .split("\r\n--")
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let attached = base64::engine::general_purpose::STANDARD
        .decode(attached)
        .unwrap();
    assert_eq!(
        attached,
        audio.to_vec(),
        "the attachment is the message's audio"
    );
    let emails = live.get(&format!("{settings}/emails")).await;
    assert_eq!(emails["items"][0]["status"], "sent", "{emails}");
    assert_eq!(emails["items"][0]["message_id"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn star_98_from_another_phone_asks_for_the_box_then_its_pin() {
    let live = Live::start().await;
    let sip = "any.vm.live.test";
    let domain = live.domain(sip).await;
    let (_, caller) = extension_with_phone(&live, &domain, "200", json!({})).await;
    let (_, boxed) = extension_with_phone(
        &live,
        &domain,
        "204",
        json!({"voicemail_enabled": true, "ring_timeout_secs": 5, "pin": PIN}),
    )
    .await;
    let desk = Phone::new(&live.fs, "LiveDesk/204");
    register(&live, &desk, &boxed).await;
    let rings = Ringing::start(&live.fs, &desk, Callee::Rings, 60).await;
    let caller_phone = Phone::new(&live.fs, "LiveCaller/200");
    let call = caller_phone
        .dial_press_and_hang_up(&caller, "204", &[Key::Pause(1500), Key::Speak(4500)], 7000)
        .await;
    assert_eq!(final_answer(&call), Some(200), "{}", call.messages);
    rings.finish().await;
    let new = box_count_until(&live, "204", sip, "new", "1").await;
    assert_eq!(new, "1");

    // 200's phone, not 204's: `*98` asks which box, then its PIN; 1 plays, 2 saves.
    let listened = caller_phone
        .dial_press_and_hang_up(
            &caller,
            "*98",
            &[
                Key::Pause(1000),
                Key::Press("204#"),
                Key::Pause(1500),
                Key::Press("246810#"),
                Key::Pause(2500),
                Key::Press("1"),
                Key::Pause(9000),
                Key::Press("2"),
                Key::Pause(2000),
            ],
            19000,
        )
        .await;
    assert_eq!(final_answer(&listened), Some(200), "{}", listened.messages);
    let saved = box_count_until(&live, "204", sip, "saved", "1").await;
    assert_eq!(
        saved, "1",
        "204's message was heard and saved from 200's phone"
    );

    // `*98204` names the box; a wrong PIN opens nothing and is audited against 204.
    let wrong = caller_phone
        .dial_press_and_hang_up(
            &caller,
            "*98204",
            &[Key::Pause(1000), Key::Press("1111#")],
            8000,
        )
        .await;
    assert_eq!(final_answer(&wrong), Some(200), "{}", wrong.messages);
    let mut failures = 0;
    for _ in 0..50 {
        let audit = live
            .get(&format!(
                "/api/v1/domains/{domain}/audit?action=voicemail.pin_failed"
            ))
            .await;
        failures = audit["items"].as_array().map_or(0, Vec::len);
        if failures > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(failures, 1, "the wrong PIN is audited once");
    assert_eq!(box_count(&live, "204", sip, "saved").await, "1");
}

/// Uploads a WAV greeting of `ms` milliseconds.
async fn put_greeting(live: &Live, path: &str, ms: u32) {
    let data = 16 * ms;
    let mut wav = b"RIFF".to_vec();
    wav.extend((36 + data).to_le_bytes());
    wav.extend(b"WAVEfmt ");
    for v in [16u32, 0x0001_0001, 8000, 16000, 0x0010_0002] {
        wav.extend(v.to_le_bytes());
    }
    wav.extend(b"data");
    wav.extend(data.to_le_bytes());
    wav.extend((0..data).map(|i| (i % 64) as u8));
    let response = live
        .app
        .request(Method::PUT, path)
        .bearer_auth(&live.admin)
        .header("content-type", "audio/wav")
        .body(wav)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert_eq!(status, 200, "{path}: {}", response.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaded_greetings_are_played_the_busy_one_when_busy() {
    let live = Live::start().await;
    let sip = "greet.vm.live.test";
    let domain = live.domain(sip).await;
    let (_, caller) = extension_with_phone(&live, &domain, "200", json!({})).await;
    let (boxed, creds) = extension_with_phone(
        &live,
        &domain,
        "204",
        json!({"voicemail_enabled": true, "ring_timeout_secs": 5, "pin": PIN}),
    )
    .await;
    let greetings = format!(
        "/api/v1/domains/{domain}/extensions/{}/voicemail/greetings",
        boxed["id"].as_str().unwrap()
    );
    // The standard greeting goes through mod_voicemail (its preference); the busy one is a file
    // the dialplan looks for.
    put_greeting(&live, &format!("{greetings}/standard"), 1200).await;
    put_greeting(&live, &format!("{greetings}/busy"), 800).await;
    let listed = live.get(&greetings).await;
    let present: Vec<bool> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["present"].as_bool().unwrap())
        .collect();
    assert_eq!(present, [true, false, true, false], "{listed}");
    let desk = Phone::new(&live.fs, "LiveDesk/204");
    register(&live, &desk, &creds).await;
    let caller_phone = Phone::new(&live.fs, "LiveCaller/200");
    let folder = format!("voicemail/default/{sip}/204");

    // Busy: the busy greeting.
    let busy = Ringing::start(&live.fs, &desk, Callee::Busy, 60).await;
    let call = caller_phone
        .dial_press_and_hang_up(&caller, "204", &[Key::Pause(1500), Key::Speak(3500)], 6000)
        .await;
    assert_eq!(final_answer(&call), Some(200), "{}", call.messages);
    busy.finish().await;
    let played = |file: &str| {
        live.fs
            .console()
            .lines()
            .filter(|l| l.contains("done playing file") && l.contains(&format!("{folder}/{file}")))
            .count()
    };
    assert_eq!(played("greeting_3.wav"), 1, "the busy greeting");
    assert_eq!(played("greeting_1.wav"), 0);

    // No answer: no unavailable greeting in the box, so its standard one.
    let rings = Ringing::start(&live.fs, &desk, Callee::Rings, 60).await;
    let call = caller_phone
        .dial_press_and_hang_up(&caller, "204", &[Key::Pause(1500), Key::Speak(3500)], 6000)
        .await;
    assert_eq!(final_answer(&call), Some(200), "{}", call.messages);
    rings.finish().await;
    assert_eq!(played("greeting_1.wav"), 1, "the standard greeting");
    assert_eq!(played("greeting_3.wav"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_left_while_switchboard_was_down_is_still_emailed() {
    let sink = switchboard_tests::smtp::SmtpSink::start();
    let port = sink.port;
    let live = Live::start_with(move |c| {
        c.mail.smtp_host = Some("127.0.0.1".to_owned());
        c.mail.smtp_port = port;
        c.mail.tls = switchboard_api::config::MailTls::None;
        c.mail.poll_interval_secs = 1;
    })
    .await;
    let sip = "down.vm.live.test";
    let domain = live.domain(sip).await;
    let (_, caller) = extension_with_phone(&live, &domain, "200", json!({})).await;
    let (boxed, _) = extension_with_phone(
        &live,
        &domain,
        "204",
        json!({"voicemail_enabled": true, "ring_timeout_secs": 5, "pin": PIN}),
    )
    .await;
    let settings = format!(
        "/api/v1/domains/{domain}/extensions/{}/voicemail",
        boxed["id"].as_str().unwrap()
    );
    let (status, saved) = live
        .call(
            Method::PUT,
            &settings,
            Some(json!({"email": "dana@down.vm.live.test", "attach_audio": false})),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    // Nothing is registered for 204: the call goes straight to its voicemail. switchboard
    // stops while the caller speaks, so nobody hears mod_voicemail announce the message. Back
    // up, the link's resync lists the box and the e-mail goes out.
    let caller_phone = Phone::new(&live.fs, "LiveCaller/200");
    let (call, ()) = tokio::join!(
        caller_phone.dial_press_and_hang_up(
            &caller,
            "204",
            &[Key::Pause(1000), Key::Speak(5000)],
            7000
        ),
        async {
            tokio::time::sleep(Duration::from_millis(3000)).await;
            live.app.stop().await;
        }
    );
    assert_eq!(final_answer(&call), Some(200), "{}", call.messages);
    let stored = box_count_until(&live, "204", sip, "new", "1").await;
    assert_eq!(
        stored, "1",
        "the message was stored while switchboard was down"
    );
    assert!(sink.messages().is_empty());
    live.app.start_again().await;
    live.wait_connected().await;
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].to, ["dana@down.vm.live.test"]);
    assert!(got[0].data.contains("in box 204"), "{}", got[0].data);
    let emails = live.get(&format!("{settings}/emails")).await;
    assert_eq!(emails["items"].as_array().unwrap().len(), 1, "{emails}");
    assert_eq!(emails["items"][0]["status"], "sent", "{emails}");
}
