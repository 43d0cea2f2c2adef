//! Calls for the live suite: sipp as the calling phone (`tests/sipp/call.xml`) and as the
//! phones that ring (`answer.xml`, `busy.xml`, `ring.xml`), each on the port its phone
//! registered its Contact with. What each sipp received is read from its message log.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::harness::{Credentials, FreeSwitch, Live, Outcome, Phone, SIPP_DIR, received};

/// How a phone behaves when it rings.
#[derive(Clone, Copy, Debug)]
pub enum Callee {
    /// Rings, answers after a moment, and takes the BYE.
    Answers,
    /// Answers 486 Busy Here.
    Busy,
    /// Rings until the ring is cancelled.
    Rings,
}

impl Callee {
    fn scenario(self) -> &'static str {
        match self {
            Self::Answers => "answer.xml",
            Self::Busy => "busy.xml",
            Self::Rings => "ring.xml",
        }
    }
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "switchboard-sipp-call-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// sipp on `port`; `calls` limits the calls it takes (`-m`), none for a callee: FreeSWITCH's
/// out-of-dialog NOTIFYs (message waiting, presence) count as calls to a sipp server, and with
/// `-m 1` a NOTIFY arriving first would make it ignore the INVITE.
fn sipp(
    fs: &FreeSwitch,
    port: u16,
    scenario: &str,
    log: &Path,
    timeout_secs: u32,
    calls: Option<u32>,
) -> Command {
    sipp_at(fs, "127.0.0.1", port, scenario, log, timeout_secs, calls)
}

/// [`sipp`] bound to another loopback address (a carrier at 127.0.0.2, a stranger at
/// 127.0.0.9): FreeSWITCH tells carriers from phones by their address.
fn sipp_at(
    fs: &FreeSwitch,
    ip: &str,
    port: u16,
    scenario: &str,
    log: &Path,
    timeout_secs: u32,
    calls: Option<u32>,
) -> Command {
    let mut command = Command::new("sipp");
    command
        .arg(format!("127.0.0.1:{}", fs.sip_port))
        .arg("-sf")
        .arg(Path::new(SIPP_DIR).join(scenario))
        .args(["-i", ip, "-p"])
        .arg(port.to_string());
    if let Some(calls) = calls {
        command.args(["-m", &calls.to_string()]);
    }
    command
        .args(["-l", "1", "-nostdin", "-aa", "-timeout"])
        .arg(timeout_secs.to_string())
        .arg("-trace_msg")
        .arg("-message_file")
        .arg(log)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// A phone's sipp waiting for calls in the background.
pub struct Ringing {
    child: Child,
    log: PathBuf,
    dir: PathBuf,
}

impl Ringing {
    /// Starts `phone` (registered beforehand) as a callee that behaves as `how`, for at most
    /// `timeout_secs`, and waits until it listens on its port.
    pub async fn start(fs: &FreeSwitch, phone: &Phone, how: Callee, timeout_secs: u32) -> Self {
        Self::start_at(fs, "127.0.0.1", phone.port, how.scenario(), timeout_secs).await
    }

    /// A sipp server at `ip:port` running `scenario` (a carrier: `answer.xml`,
    /// `unavailable.xml`, `registrar.xml`).
    pub async fn start_at(
        fs: &FreeSwitch,
        ip: &str,
        port: u16,
        scenario: &str,
        timeout_secs: u32,
    ) -> Self {
        let dir = scratch();
        let log = dir.join("callee.log");
        let child = sipp_at(fs, ip, port, scenario, &log, timeout_secs, None)
            .spawn()
            .unwrap_or_else(|e| panic!("running sipp: {e}"));
        // Listening once the port can no longer be bound.
        for _ in 0..100 {
            if std::net::UdpSocket::bind((ip, port)).is_err() {
                return Self { child, log, dir };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("sipp did not listen on {ip}:{port} within 5 s");
    }

    /// Ends the callee (the call it was waiting for is over: the caller's sipp has returned)
    /// and returns what it saw. sipp quits on SIGINT and writes its message log; a second
    /// SIGINT ends calls still waiting (a stray NOTIFY's).
    pub async fn finish(self) -> Outcome {
        let Self { child, log, dir } = self;
        // Let the last messages of the call (ACK, the 200 to BYE) arrive.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        if let Some(pid) = child.id() {
            for _ in 0..2 {
                let _ = Command::new("kill")
                    .args(["-INT", &pid.to_string()])
                    .status()
                    .await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("a callee's sipp outlived its own timeout")
            .unwrap();
        let messages = std::fs::read_to_string(&log).unwrap_or_default();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        if !output.status.success() {
            eprintln!(
                "callee sipp ended with {}:\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        outcome(messages)
    }
}

fn outcome(messages: String) -> Outcome {
    let last_status = received(&messages)
        .iter()
        .filter_map(|m| m.strip_prefix("SIP/2.0 "))
        .filter_map(|l| l.get(..3)?.parse().ok())
        .next_back();
    Outcome {
        last_status,
        messages,
    }
}

/// `caller` (a phone at `phone`'s port) dials `number` and, when answered, hangs up after a
/// moment; what the caller saw.
pub async fn dial(fs: &FreeSwitch, phone: &Phone, caller: &Credentials, number: &str) -> Outcome {
    dial_with(fs, phone, caller, number, "call.xml").await
}

/// [`dial`] with another caller scenario (`call_hold.xml`: hold the call until FreeSWITCH
/// hangs up).
pub async fn dial_with(
    fs: &FreeSwitch,
    phone: &Phone,
    caller: &Credentials,
    number: &str,
    scenario: &str,
) -> Outcome {
    let dir = scratch();
    let log = dir.join("caller.log");
    let mut command = sipp(fs, phone.port, scenario, &log, 90, Some(1));
    command.args([
        "-key",
        "user",
        &caller.user,
        "-key",
        "domain",
        &caller.realm,
        "-key",
        "dial",
        number,
        "-key",
        "ua",
        &phone.user_agent,
        "-au",
        &caller.user,
        "-ap",
        &caller.password,
    ]);
    let output = command
        .output()
        .await
        .unwrap_or_else(|e| panic!("running sipp: {e}"));
    let messages = std::fs::read_to_string(&log).unwrap_or_default();
    if !output.status.success() {
        eprintln!(
            "caller sipp did not complete ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr),
            messages
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    outcome(messages)
}

/// A carrier at `ip` calls `number` (no credentials: a gateway is let in by its address) from
/// `from`; what it saw.
pub async fn carrier_dial(fs: &FreeSwitch, ip: &str, from: &str, number: &str) -> Outcome {
    let dir = scratch();
    let log = dir.join("carrier.log");
    let port = crate::harness::free_port();
    let mut command = sipp_at(fs, ip, port, "carrier_call.xml", &log, 60, Some(1));
    command.args([
        "-key", "user", from, "-key", "dial", number, "-key", "ua", "carrier",
    ]);
    run_carrier(command, &log, &dir).await
}

/// A carrier at `ip` calls `number` from `from` and, once answered, presses `keys`; it hangs
/// up after `hang_up_after_ms` unless FreeSWITCH did first. What the carrier saw.
pub async fn carrier_dial_and_press(
    fs: &FreeSwitch,
    ip: &str,
    from: &str,
    number: &str,
    keys: &[crate::dtmf::Key],
    hang_up_after_ms: u32,
) -> Outcome {
    let dir = scratch();
    let log = dir.join("carrier.log");
    let pcap = dir.join("keys.pcap");
    crate::dtmf::write_pcap(&pcap, keys);
    let template =
        std::fs::read_to_string(Path::new(SIPP_DIR).join("carrier_dial_and_press.xml")).unwrap();
    let scenario = dir.join("carrier_dial_and_press.xml");
    std::fs::write(
        &scenario,
        template
            .replace("PCAP_FILE", pcap.to_str().unwrap())
            .replace("HANG_UP_AFTER_MS", &hang_up_after_ms.to_string()),
    )
    .unwrap();
    let port = crate::harness::free_port();
    let media_port = crate::harness::free_port().to_string();
    let timeout = hang_up_after_ms / 1000 + 60;
    let mut command = sipp_at(
        fs,
        ip,
        port,
        scenario.to_str().unwrap(),
        &log,
        timeout,
        Some(1),
    );
    command.args([
        "-key",
        "user",
        from,
        "-key",
        "dial",
        number,
        "-mp",
        &media_port,
    ]);
    run_carrier(command, &log, &dir).await
}

/// Runs a carrier's sipp to the end: what it saw (its scratch folder removed).
async fn run_carrier(mut command: Command, log: &Path, dir: &Path) -> Outcome {
    let output = command
        .output()
        .await
        .unwrap_or_else(|e| panic!("running sipp: {e}"));
    let messages = std::fs::read_to_string(log).unwrap_or_default();
    if !output.status.success() {
        eprintln!(
            "carrier sipp did not complete ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr),
            messages
        );
    }
    let _ = std::fs::remove_dir_all(dir);
    outcome(messages)
}

/// The messages sipp sent, in order, from its message log.
pub fn sent(messages: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = messages;
    while let Some(at) = rest.find("message sent") {
        rest = &rest[at..];
        let body = rest.split_once("\n\n").map(|(_, b)| b).unwrap_or_default();
        let end = body
            .find("\n-----------------------------------------------")
            .unwrap_or(body.len());
        found.push(body[..end].trim_start());
        rest = &body[end..];
    }
    found
}

/// The requests (method names) among `messages`, in order.
pub fn requests<'a>(messages: &[&'a str]) -> Vec<&'a str> {
    messages
        .iter()
        .filter(|m| !m.starts_with("SIP/2.0"))
        .filter_map(|m| m.split_whitespace().next())
        .collect()
}

/// The final answer (status ≥ 200) the caller got to its INVITE.
pub fn final_answer(caller: &Outcome) -> Option<u16> {
    received(&caller.messages)
        .iter()
        .filter(|m| {
            m.lines().any(|l| {
                let l = l.trim().to_ascii_lowercase();
                l.starts_with("cseq:") && l.ends_with(" invite")
            })
        })
        .filter_map(|m| m.strip_prefix("SIP/2.0 "))
        .filter_map(|l| l.get(..3)?.parse::<u16>().ok())
        .rfind(|status| *status >= 200)
}

/// The `Reason:` header (FreeSWITCH names its hangup cause there, e.g. `Q.850;cause=1;
/// text="UNALLOCATED_NUMBER"`) of the first response with `status` sipp received.
pub fn reason_line(outcome: &Outcome, status: u16) -> String {
    received(&outcome.messages)
        .iter()
        .find(|m| m.starts_with(&format!("SIP/2.0 {status}")))
        .and_then(|m| {
            m.lines()
                .find(|l| l.to_ascii_lowercase().starts_with("reason:"))
        })
        .unwrap_or_default()
        .to_owned()
}

/// An Extension `number` (with `extension` merged into its body) and a fixed Device it owns:
/// the Extension as created and the Device's SIP credentials.
pub async fn extension_with_phone(
    live: &Live,
    domain: &str,
    number: &str,
    extension: Value,
) -> (Value, Credentials) {
    let mut body = json!({"number": number, "display_name": format!("Ext {number}")});
    for (k, v) in extension.as_object().unwrap() {
        body[k] = v.clone();
    }
    let created = live.create(domain, "extensions", body).await;
    let device = live
        .create(
            domain,
            "devices",
            json!({"label": format!("Desk {number}"), "mode": "fixed",
                   "owner_extension_id": created["id"]}),
        )
        .await;
    let credentials = live
        .credentials(domain, device["id"].as_str().unwrap())
        .await;
    (created, credentials)
}

/// Registers `phone` with `c` and waits until FreeSWITCH holds the registration.
/// A hot-desk Device of `domain` with `extension` logged in through the API: its credentials.
pub async fn hot_desk_logged_in(live: &Live, domain: &str, extension: &str) -> Credentials {
    let hot = live
        .create(
            domain,
            "devices",
            json!({"label": "Hot desk", "mode": "hotdesk"}),
        )
        .await;
    let hot_id = hot["id"].as_str().unwrap();
    let (status, body) = live
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/domains/{domain}/devices/{hot_id}/session"),
            Some(json!({"extension": extension})),
        )
        .await;
    assert!(
        status == 200 || status == 201,
        "logging in: {status} {body}"
    );
    live.credentials(domain, hot_id).await
}

pub async fn register(live: &Live, phone: &Phone, c: &Credentials) {
    let call_id = format!("reg-{}@live.test", uuid::Uuid::new_v4().simple());
    let outcome = phone.register(c, &call_id, 1).await;
    assert_eq!(outcome.last_status, Some(200), "{}", outcome.messages);
    let wanted = format!("{}@{}", c.user, c.realm).to_ascii_lowercase();
    for _ in 0..50 {
        if live
            .fs
            .registrations()
            .await
            .iter()
            .any(|(user, _)| user.eq_ignore_ascii_case(&wanted))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("FreeSWITCH does not hold {wanted} after 5 s");
}
