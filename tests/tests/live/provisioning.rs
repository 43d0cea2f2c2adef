//! Phone provisioning through the real FreeSWITCH: a Yealink T54W on a hot desk (sipp, registered
//! with its Device's SIP credentials and a Yealink User-Agent) is logged in with `*11` and out
//! with `*12`. Each time FreeSWITCH sends the registered phone a check-sync NOTIFY, and the next
//! fetch of its `<mac>.cfg` carries the name and keys of whoever sits there.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::process::{Child, Command};

use switchboard_tests::provisioning::{fetch_digest, value_of, yealink_keys};

use crate::dtmf::{Key, answered_and_hung_up};
use crate::harness::{FreeSwitch, Live, Phone, SIPP_DIR, received};
use crate::sipp_calls::register;

const PIN: &str = "4711";
const PIN_KEYS: &str = "4711#";
const MAC: &str = "00:15:65:5B:0A:01";
/// What a T54W announces: FreeSWITCH picks the check-sync flavour by the registration's
/// User-Agent, so the phone must look like the real one.
const USER_AGENT: &str = "Yealink SIP-T54W 96.86.0.100";
/// The first prompt starts once the call reaches the outbound socket; a key pressed before
/// it runs is lost.
const FIRST_PROMPT: Key = Key::Pause(2000);

fn tail(text: &str) -> &str {
    &text[text.len().saturating_sub(6000)..]
}

/// The registered phone's own port, answered by sipp: it takes every NOTIFY FreeSWITCH sends
/// there with a 200 (`-aa`) and writes it to its message log, which it flushes per message, so
/// the log is read while sipp runs.
struct Inbox {
    _sipp: Child,
    log: PathBuf,
    /// check-sync NOTIFYs already returned by [`Inbox::next_check_sync`].
    taken: usize,
}

impl Inbox {
    /// Starts listening on `phone`'s port (registered beforehand) and waits until sipp holds it.
    async fn open(fs: &FreeSwitch, phone: &Phone) -> Self {
        let log = phone.dir.join("inbox.log");
        // ring.xml waits for an INVITE that never comes; the NOTIFYs are answered by -aa.
        let sipp = Command::new("sipp")
            .arg(format!("127.0.0.1:{}", fs.sip_port))
            .arg("-sf")
            .arg(Path::new(SIPP_DIR).join("ring.xml"))
            .args(["-i", "127.0.0.1", "-p"])
            .arg(phone.port.to_string())
            .args(["-l", "1", "-nostdin", "-aa", "-timeout", "120"])
            .arg("-trace_msg")
            .arg("-message_file")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("running sipp: {e}"));
        for _ in 0..100 {
            if std::net::UdpSocket::bind(("127.0.0.1", phone.port)).is_err() {
                return Self {
                    _sipp: sipp,
                    log,
                    taken: 0,
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("sipp did not listen on 127.0.0.1:{} within 5 s", phone.port);
    }

    /// Forgets every check-sync NOTIFY received so far: the next one must come after now.
    fn skip_received(&mut self) {
        self.taken = self.check_syncs().len();
    }

    /// The check-sync NOTIFYs received so far: switchboard's own (`check-sync;reboot=false`,
    /// sent as mod_sofia's NOTIFY event: the phone fetches its file again) and those of a
    /// dropped registration (`flush_inbound_reg … reboot`, which FreeSWITCH 1.10 words by the
    /// User-Agent: `check-sync;reboot=true` to a Yealink or snom, `check-sync` to others).
    fn check_syncs(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        received(&text)
            .into_iter()
            .filter(|m| m.starts_with("NOTIFY ") && event_of(m).starts_with("check-sync"))
            .map(str::to_owned)
            .collect()
    }

    /// Waits (up to 10 s) for a check-sync NOTIFY after the last one this returned.
    async fn next_check_sync(&mut self, fs: &FreeSwitch) -> String {
        for _ in 0..100 {
            if let Some(notify) = self.check_syncs().into_iter().nth(self.taken) {
                self.taken += 1;
                return notify;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "no check-sync NOTIFY reached the registered phone within 10 s; it received:\n{}\n\
             FreeSWITCH: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default(),
            tail(&fs.console())
        );
    }
}

/// The value of a message's `Event:` header, lower-cased.
fn event_of(message: &str) -> String {
    message
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("event")
                .then(|| value.trim().to_ascii_lowercase())
        })
        .unwrap_or_default()
}

/// Fetches `<file>` the way a phone does (a challenge, then digest); the file (asserting a 200).
async fn fetch(live: &Live, file: &str, user: &str, password: &str) -> String {
    let (status, body) = fetch_digest(&live.app, file, user, password).await;
    assert_eq!(status, 200, "fetching {file}: {body}");
    body
}

/// The file of a phone nobody is logged in to: the logged-out layout's login key, nobody's name.
fn assert_logged_out(file: &str) {
    let keys = yealink_keys(file);
    assert_eq!(keys.len(), 1, "only the login key: {file}");
    assert_eq!(keys[&1].1, "*11", "{file}");
    assert!(!file.contains("Ada Lovelace"), "201's name is gone: {file}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_and_a_logout_at_the_phone_make_it_fetch_the_keys_of_who_sits_there() {
    let live = Live::start().await;
    let domain = live.domain("provision.live.test").await;
    live.create(
        &domain,
        "extensions",
        json!({"number": "201", "display_name": "Ada Lovelace", "pin": PIN,
               "hotdesk_allowed": true}),
    )
    .await;
    let bob = live
        .create(
            &domain,
            "extensions",
            json!({"number": "202", "display_name": "Bob"}),
        )
        .await;
    let device = live
        .create(
            &domain,
            "devices",
            json!({"label": "Desk 1", "mode": "hotdesk", "mac_address": MAC,
                   "vendor": "Yealink", "model": "T54W"}),
        )
        .await;
    let device_id = device["id"].as_str().unwrap();
    live.create(
        &domain,
        "provisioning/layouts",
        json!({"name": "Logged out", "model": "yealink-t54w", "logged_out": true,
               "keys": [{"kind": "login"}]}),
    )
    .await;
    live.create(
        &domain,
        "provisioning/layouts",
        json!({"name": "Person", "model": "yealink-t54w",
               "keys": [{"kind": "line"}, {"kind": "blf", "extension_id": bob["id"]},
                        {"kind": "logout"}]}),
    )
    .await;
    let sip = live.credentials(&domain, device_id).await;
    let provisioning = live
        .get(&format!(
            "/api/v1/domains/{domain}/devices/{device_id}/provisioning/credential"
        ))
        .await;
    let (user, password) = (
        provisioning["username"].as_str().unwrap().to_owned(),
        provisioning["password"].as_str().unwrap().to_owned(),
    );
    let file = format!("{}.cfg", MAC.replace(':', "").to_lowercase());

    // Logged out: the login key, and the phone's own account.
    let logged_out = fetch(&live, &file, &user, &password).await;
    assert_logged_out(&logged_out);
    assert_eq!(
        value_of(&logged_out, "account.1.user_name").as_deref(),
        Some(sip.user.as_str()),
        "{logged_out}"
    );

    let phone = Phone::new(&live.fs, USER_AGENT);
    register(&live, &phone, &sip).await;
    let mut inbox = Inbox::open(&live.fs, &phone).await;
    // The keys are pressed on a second sipp with the desk's credentials: one sipp cannot listen
    // on the registered port and place a call from it at once.
    let keypad = Phone::new(&live.fs, USER_AGENT);

    // *11 with 201 dialled and the PIN by DTMF: the registered phone is told to re-sync, and
    // its next fetch is Ada's.
    let login = keypad
        .dial_and_press(&sip, "*11201", &[FIRST_PROMPT, Key::Press(PIN_KEYS)], 30)
        .await;
    assert!(
        answered_and_hung_up(&login),
        "*11201: {}\nFreeSWITCH: {}",
        login.messages,
        tail(&live.fs.console())
    );
    let session = live
        .get(&format!(
            "/api/v1/domains/{domain}/devices/{device_id}/session"
        ))
        .await;
    assert_eq!(session["extension_number"], "201", "{session}");
    let notify = inbox.next_check_sync(&live.fs).await;
    assert!(
        notify.starts_with(&format!("NOTIFY sip:{}@127.0.0.1:{}", sip.user, phone.port)),
        "sent to the registered contact: {notify}"
    );
    // A login re-reads the file without rebooting the phone (FreeSWITCH's own `check_sync`
    // would tell a Yealink `reboot=true`).
    assert_eq!(event_of(&notify), "check-sync;reboot=false", "{notify}");
    let ada = fetch(&live, &file, &user, &password).await;
    assert_eq!(
        value_of(&ada, "account.1.display_name").as_deref(),
        Some("Ada Lovelace"),
        "{ada}"
    );
    let keys = yealink_keys(&ada);
    assert_eq!(keys.len(), 3, "line, BLF, logout: {ada}");
    assert_eq!(
        (keys[&1].0.as_str(), keys[&1].1.as_str()),
        ("15", sip.user.as_str()),
        "{ada}"
    );
    assert_eq!(
        (keys[&2].0.as_str(), keys[&2].1.as_str()),
        ("16", "202"),
        "{ada}"
    );
    assert!(keys[&2].2.contains("Bob"), "{ada}");
    assert_eq!(keys[&3].1, "*12", "{ada}");

    // *12: told to re-sync again, and the next fetch is the logged-out layout.
    inbox.skip_received();
    let logout = keypad.dial_and_press(&sip, "*12", &[], 30).await;
    assert!(
        answered_and_hung_up(&logout),
        "*12: {}\nFreeSWITCH: {}",
        logout.messages,
        tail(&live.fs.console())
    );
    inbox.next_check_sync(&live.fs).await;
    assert_logged_out(&fetch(&live, &file, &user, &password).await);
}
