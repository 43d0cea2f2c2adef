//! The live harness: the packaged FreeSWITCH started with the configuration we ship
//! (`freeswitch/conf/`, only `vars.xml` rewritten with this run's ports and passwords), the
//! switchboard under test on a fresh PostgreSQL database with mod_xml_curl and the Event Socket
//! pointed at each other, and sipp as the phones. Everything binds to 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};
use switchboard_api::config::NodeConfig;
use switchboard_tests::{Backend, TestApp, spawn_app_detached};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// The environment variable naming a folder laid out like the packaged FreeSWITCH
/// (`bin/freeswitch`, `lib/`, `mod/`).
pub const FREESWITCH_DIR_ENV: &str = "SWITCHBOARD_FREESWITCH_DIR";
/// Where the packaged FreeSWITCH sits relative to this package (the repository's parent folder
/// holds `shared/freeswitch`).
const DEFAULT_FREESWITCH_DIR: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/freeswitch");
/// The configuration we ship.
const SHIPPED_CONF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../freeswitch/conf");
/// The prompts we ship.
const SHIPPED_PROMPTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../freeswitch/sounds/switchboard"
);
/// The sipp scenarios.
pub const SIPP_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/sipp");
pub const ESL_PASSWORD: &str = "live-esl-password-0451";
pub const XML_CURL_PASSWORD: &str = "live-xml-curl-password-0451";
/// The SIP profile of the shipped configuration.
pub const PROFILE: &str = "internal";

fn freeswitch_dir() -> PathBuf {
    let dir = std::env::var_os(FREESWITCH_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_FREESWITCH_DIR));
    let binary = dir.join("bin/freeswitch");
    assert!(
        binary.is_file(),
        "FreeSWITCH is missing: {} does not exist.\n\
         The live suite needs a FreeSWITCH 1.10 laid out as bin/freeswitch, lib/ and mod/ \
         (mod_sofia, mod_xml_curl, mod_event_socket, mod_commands, mod_dptools, mod_hash, \
         mod_loopback, mod_voicemail, mod_dialplan_xml, mod_sndfile, mod_native_file, \
         mod_tone_stream, mod_say_en, mod_db, mod_console, mod_logfile, mod_valet_parking).\n\
         Point {FREESWITCH_DIR_ENV} at that folder (CI uses the packaged one at ../shared/freeswitch \
         beside the repository; see its README for the runtime packages: apt-get install -y \
         libpcre3 libspeex1 libspeexdsp1 libsndfile1).",
        binary.display()
    );
    dir
}

/// Checks that sipp is installed, or fails saying how to get it.
pub fn require_sipp() {
    let found = std::process::Command::new("sipp")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "sipp is missing: the live suite drives calls with it. Install it with \
         `apt-get install -y sip-tester` (Debian/Ubuntu) and run again."
    );
}

/// The ports this suite hands out: outside the kernel's ephemeral range (where every outgoing
/// connection of every process on the machine takes its source port, so a port found free there
/// can be taken again before FreeSWITCH or sipp binds it) and above the RTP blocks (10000–32699).
fn own_port_range() -> (u16, u16) {
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse::<u32>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999));
    if ephemeral.1 + 1000 <= 65535 {
        ((ephemeral.1 + 1) as u16, 65535)
    } else {
        // Ephemeral ports reach the top: use the band below RTP.
        (5000, 9999)
    }
}

/// A free port on 127.0.0.1 for both UDP and TCP (SIP listens on both), from the suite's own
/// range, never the same one twice in a run (a cursor starting at a random place, so two runs on
/// one machine rarely meet, and a port still bound elsewhere is skipped).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static CURSOR: AtomicU32 = AtomicU32::new(u32::MAX);
    let (low, high) = own_port_range();
    let span = u32::from(high - low) + 1;
    let _ = CURSOR.compare_exchange(
        u32::MAX,
        uuid::Uuid::new_v4().as_u128() as u32 % span,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..span {
        let port = low + (CURSOR.fetch_add(1, Ordering::SeqCst) % span) as u16;
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port in {low}–{high}");
}

/// The first port of a free block of 100 RTP ports in 10000–32699, a different block each time
/// in a run (starting at a random one).
fn rtp_block() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static CURSOR: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = CURSOR.compare_exchange(
        u32::MAX,
        uuid::Uuid::new_v4().as_u128() as u32 % 227,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    10000 + (CURSOR.fetch_add(1, Ordering::SeqCst) % 227) as u16 * 100
}

/// The events one [`FreeSwitch::watch`] saw.
pub struct EventWatch {
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl EventWatch {
    /// Waits (up to 10 s) for an event whose body holds every one of `lines` (whole header
    /// lines such as `MWI-Messages-Waiting: no`), seen after the last one this returned;
    /// panics with what was seen otherwise.
    pub async fn wait_for(&self, lines: &[&str]) -> String {
        for _ in 0..100 {
            {
                let mut seen = self.seen.lock().unwrap();
                if let Some(i) = seen
                    .iter()
                    .position(|body| lines.iter().all(|l| body.lines().any(|b| b == *l)))
                {
                    let found = seen[i].clone();
                    seen.drain(..=i);
                    return found;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "no event with {lines:?} within 10 s; seen:\n{}",
            self.seen.lock().unwrap().join("\n----\n")
        );
    }
}

impl Drop for EventWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A running FreeSWITCH, killed and its run folder removed on drop (kept when the test
/// failed, to read its log).
pub struct FreeSwitch {
    child: Option<Child>,
    dir: PathBuf,
    /// The run folder (configuration, logs, recordings, the CDR spool).
    pub run: PathBuf,
    /// The SIP profile's port.
    pub sip_port: u16,
    /// The Event Socket's port.
    pub esl_port: u16,
}

/// The ports and URL a FreeSWITCH is started with.
#[derive(Clone, Debug)]
pub struct FreeSwitchPorts {
    /// SIP.
    pub sip: u16,
    /// Event Socket.
    pub esl: u16,
    /// First RTP port (a block of 100).
    pub rtp: u16,
}

impl FreeSwitchPorts {
    pub fn pick() -> Self {
        // Below Linux's ephemeral ports and the suite's own range (where free_port() picks the
        // SIP and Event Socket ports), so one FreeSWITCH's media never takes another's SIP port.
        let rtp = rtp_block();
        Self {
            sip: free_port(),
            esl: free_port(),
            rtp,
        }
    }
}

impl FreeSwitch {
    /// A fresh folder for one FreeSWITCH's run (not created yet).
    pub fn new_run_dir() -> PathBuf {
        std::env::temp_dir().join(format!(
            "switchboard-live-{}",
            uuid::Uuid::new_v4().simple()
        ))
    }

    /// The folder mod_json_cdr spools CDRs it could not post to, in the run folder `run`.
    pub fn cdr_spool_of(run: &Path) -> PathBuf {
        run.join("log/json_cdr")
    }

    /// The folder FreeSWITCH records into, in the run folder `run`.
    pub fn recordings_of(run: &Path) -> PathBuf {
        run.join("recordings")
    }

    /// Starts FreeSWITCH with the shipped configuration in the folder `run`, its mod_xml_curl
    /// pointed at `xml_curl_url`, and waits until it is ready; it posts CDRs to `cdr_url` when
    /// given (retrying a failed post twice, a second apart, before it spools it).
    pub async fn start_in(
        run: PathBuf,
        ports: &FreeSwitchPorts,
        xml_curl_url: &str,
        cdr_url: Option<&str>,
    ) -> Self {
        let dir = freeswitch_dir();
        copy_dir(Path::new(SHIPPED_CONF), &run.join("conf"));
        let vars = run.join("conf/vars.xml");
        let text = std::fs::read_to_string(&vars).unwrap();
        let text = set_vars(
            &text,
            &[
                ("switchboard_xml_curl_url", xml_curl_url.to_owned()),
                (
                    "switchboard_xml_curl_credentials",
                    format!("freeswitch:{XML_CURL_PASSWORD}"),
                ),
                ("event_socket_port", ports.esl.to_string()),
                ("event_socket_password", ESL_PASSWORD.to_owned()),
                ("sip_port", ports.sip.to_string()),
                ("rtp_start_port", ports.rtp.to_string()),
                // Even: FreeSWITCH rounds an odd end port down, with a warning.
                ("rtp_end_port", (ports.rtp + 98).to_string()),
                (
                    "switchboard_cdr_url",
                    cdr_url
                        .unwrap_or("http://127.0.0.1:9/freeswitch/cdr")
                        .to_owned(),
                ),
                ("switchboard_cdr_retries", "2".to_owned()),
                ("switchboard_cdr_retry_delay", "1".to_owned()),
                (
                    "switchboard_cdr_spool",
                    Self::cdr_spool_of(&run).display().to_string(),
                ),
                ("console_loglevel", "debug".to_owned()),
                // The suite keeps FreeSWITCH's log of a failed test: in full.
                ("log_level", "debug".to_owned()),
            ],
        );
        std::fs::write(&vars, text).unwrap();
        let mut fs = Self {
            child: None,
            dir,
            run,
            sip_port: ports.sip,
            esl_port: ports.esl,
        };
        fs.spawn().await;
        fs
    }

    async fn spawn(&mut self) {
        for sub in [
            "log",
            "db",
            "run",
            "temp",
            "storage",
            "recordings",
            "sounds",
            "cache",
            "certs",
            "scripts",
        ] {
            std::fs::create_dir_all(self.run.join(sub)).unwrap();
        }
        // The shipped prompts where vars.xml's switchboard_prompts expects them, as an
        // operator installs them.
        let prompts = self.run.join("sounds/switchboard");
        if !prompts.exists() {
            std::os::unix::fs::symlink(SHIPPED_PROMPTS, &prompts).unwrap();
        }
        let output = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.console_path())
            .unwrap();
        let mut command = Command::new(self.dir.join("bin/freeswitch"));
        command
            .env("LD_LIBRARY_PATH", self.dir.join("lib"))
            .args(["-nonat", "-nc", "-nf", "-mod"])
            .arg(self.dir.join("mod"))
            .arg("-conf")
            .arg(self.run.join("conf"));
        for (flag, sub) in [
            ("-log", "log"),
            ("-db", "db"),
            ("-run", "run"),
            ("-temp", "temp"),
            ("-storage", "storage"),
            ("-recordings", "recordings"),
            ("-sounds", "sounds"),
            ("-cache", "cache"),
            ("-certs", "certs"),
            ("-scripts", "scripts"),
        ] {
            command.arg(flag).arg(self.run.join(sub));
        }
        command
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .kill_on_drop(true);
        let child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "starting {} failed: {e}",
                self.dir.join("bin/freeswitch").display()
            )
        });
        self.child = Some(child);
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        // 60 s: two FreeSWITCH starting side by side on a loaded 2-core CI machine once took
        // longer than 30 s.
        for _ in 0..300 {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "FreeSWITCH exited at start ({status}); its output:\n{}",
                        self.console()
                    );
                }
            }
            // Ready, and the SIP profile listening: sofia retries every 5 s when its port was
            // taken at start (another test's sipp or RTP briefly holding it).
            if let Ok(status) = self.try_api("status").await {
                if status.contains("is ready")
                    && self.try_api("sofia status").await.is_ok_and(|s| {
                        s.lines().any(|l| {
                            l.trim_start().starts_with(PROFILE)
                                && l.contains("\tprofile\t")
                                && l.contains("RUNNING")
                        })
                    })
                {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!(
            "FreeSWITCH was not ready within 60 s; its output:\n{}",
            self.console()
        );
    }

    fn console_path(&self) -> PathBuf {
        self.run.join("console.log")
    }

    /// Everything FreeSWITCH printed and logged so far: its output (with `-nc` only what it
    /// prints before logging starts, or a crash) and `log/freeswitch.log`, where every log
    /// line goes.
    pub fn console(&self) -> String {
        let mut text = std::fs::read_to_string(self.console_path()).unwrap_or_default();
        text.push_str(
            &std::fs::read_to_string(self.run.join("log/freeswitch.log")).unwrap_or_default(),
        );
        text
    }

    /// Kills FreeSWITCH with SIGKILL (a crash) and waits until it is gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts it again on the same folders after [`FreeSwitch::kill`].
    pub async fn restart(&mut self) {
        let _ = std::fs::remove_file(self.run.join("run/freeswitch.pid"));
        self.spawn().await;
    }

    /// `api <command>` over the Event Socket; the body of the reply.
    pub async fn api(&self, command: &str) -> String {
        self.try_api(command)
            .await
            .unwrap_or_else(|e| panic!("api {command}: {e}"))
    }

    async fn try_api(&self, command: &str) -> std::io::Result<String> {
        let stream = TcpStream::connect(("127.0.0.1", self.esl_port)).await?;
        let mut reader = BufReader::new(stream);
        read_frame(&mut reader).await?;
        reader
            .get_mut()
            .write_all(format!("auth {ESL_PASSWORD}\n\n").as_bytes())
            .await?;
        let (headers, _) = read_frame(&mut reader).await?;
        if !headers.contains("+OK accepted") {
            return Err(std::io::Error::other(format!("auth refused: {headers}")));
        }
        reader
            .get_mut()
            .write_all(format!("api {command}\n\n").as_bytes())
            .await?;
        let (_, body) = read_frame(&mut reader).await?;
        Ok(body)
    }

    /// Watches FreeSWITCH's events of `subscription` (`event plain …`) from now on: every event
    /// body (its headers, percent-encoded as sent) is kept for [`EventWatch::wait_for`].
    pub async fn watch(&self, subscription: &str) -> EventWatch {
        let stream = TcpStream::connect(("127.0.0.1", self.esl_port))
            .await
            .unwrap();
        let mut reader = BufReader::new(stream);
        read_frame(&mut reader).await.unwrap();
        for command in [
            format!("auth {ESL_PASSWORD}"),
            format!("event plain {subscription}"),
        ] {
            reader
                .get_mut()
                .write_all(format!("{command}\n\n").as_bytes())
                .await
                .unwrap();
            let (headers, _) = read_frame(&mut reader).await.unwrap();
            assert!(headers.contains("+OK"), "{command}: {headers}");
        }
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((_, body)) = read_frame(&mut reader).await {
                sink.lock().unwrap().push(body);
            }
        });
        EventWatch { seen, task }
    }

    /// The registrations the profile really holds (`sofia xmlstatus profile <p> reg`): the
    /// `user@domain` each is stored under (the To), with its contact.
    pub async fn registrations(&self) -> Vec<(String, String)> {
        let xml = self
            .api(&format!("sofia xmlstatus profile {PROFILE} reg"))
            .await;
        let doc = roxmltree::Document::parse(&xml)
            .unwrap_or_else(|e| panic!("sofia xmlstatus is not XML ({e}): {xml}"));
        doc.descendants()
            .filter(|n| n.has_tag_name("registration"))
            .map(|n| {
                let text = |tag: &str| {
                    n.children()
                        .find(|c| c.has_tag_name(tag))
                        .and_then(|c| c.text())
                        .unwrap_or_default()
                        .to_owned()
                };
                (text("user"), text("contact"))
            })
            .collect()
    }
}

impl Drop for FreeSwitch {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        if std::thread::panicking() {
            eprintln!(
                "FreeSWITCH's folder (configuration, console.log, log/) is kept at {}",
                self.run.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.run);
        }
    }
}

/// One Event Socket frame: its headers and body.
async fn read_frame(reader: &mut BufReader<TcpStream>) -> std::io::Result<(String, String)> {
    let mut headers = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == "\n" {
            if headers.is_empty() {
                continue;
            }
            break;
        }
        if let Some(value) = line.strip_prefix("Content-Length: ") {
            length = value.trim().parse().unwrap_or(0);
        }
        headers.push_str(&line);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok((headers, String::from_utf8_lossy(&body).into_owned()))
}

fn set_vars(text: &str, values: &[(&str, String)]) -> String {
    let mut text = text.to_owned();
    for (name, value) in values {
        let prefix = format!("data=\"{name}=");
        let start = text
            .find(&prefix)
            .unwrap_or_else(|| panic!("vars.xml does not set {name}"))
            + prefix.len();
        let end = start + text[start..].find('"').unwrap();
        text.replace_range(start..end, value);
    }
    text
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// switchboard and FreeSWITCH, connected: the unit every live test starts with.
pub struct Live {
    /// switchboard (on a fresh PostgreSQL database).
    pub app: TestApp,
    /// FreeSWITCH.
    pub fs: FreeSwitch,
    /// The platform administrator's token.
    pub admin: String,
}

impl Live {
    /// Starts both and waits until the bridge's link is up.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// [`Live::start`] with the server's configuration tweaked further.
    pub async fn start_with(
        tweak: impl FnOnce(&mut switchboard_tests::Config) + Send + 'static,
    ) -> Self {
        require_sipp();
        let ports = FreeSwitchPorts::pick();
        let outbound = free_port();
        let esl_port = ports.esl;
        let run = FreeSwitch::new_run_dir();
        let spool = FreeSwitch::cdr_spool_of(&run);
        let recordings = FreeSwitch::recordings_of(&run);
        let storage = run.join("storage");
        // On a runtime of its own: a test may stop and start it again as a process would be.
        let app = spawn_app_detached(Backend::Postgres, move |c| {
            c.history.cdr_spool_dir = Some(spool);
            c.history.spool_interval_secs = 1;
            c.history.recordings_dir = Some(recordings);
            c.voicemail.storage_dir = Some(storage);
            c.freeswitch.xml_curl.password = Some(SecretString::from(XML_CURL_PASSWORD));
            c.freeswitch.outbound_socket = format!("127.0.0.1:{outbound}");
            c.freeswitch.nodes = vec![NodeConfig {
                name: "fs1".to_owned(),
                host: "127.0.0.1".to_owned(),
                port: esl_port,
                password: SecretString::from(ESL_PASSWORD),
                profile: PROFILE.to_owned(),
            }];
            c.freeswitch.link.reconnect_initial_ms = 100;
            c.freeswitch.link.reconnect_max_secs = 1;
            tweak(c);
        })
        .await;
        let fs = FreeSwitch::start_in(
            run,
            &ports,
            &app.url("/freeswitch/xml"),
            Some(&app.url("/freeswitch/cdr")),
        )
        .await;
        let admin = app.admin_token().await;
        let live = Self { app, fs, admin };
        live.wait_connected().await;
        live
    }

    /// Waits (up to 10 s) until the bridge reports the node connected.
    pub async fn wait_connected(&self) {
        for _ in 0..100 {
            let nodes = self.get("/api/v1/freeswitch/nodes").await;
            if nodes["items"][0]["state"] == "connected" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the bridge did not connect to FreeSWITCH within 10 s");
    }

    /// `method path` as the administrator: status and JSON body.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let response = self
            .app
            .send_as(&self.admin, method, path, body.as_ref())
            .await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `GET path` as the administrator; panics unless 200.
    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Creates a Domain; returns its id.
    pub async fn domain(&self, sip_domain: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/domains",
                Some(json!({"name": sip_domain, "sip_domain": sip_domain, "timezone": "Europe/Berlin"})),
            )
            .await;
        assert_eq!(status, 201, "creating the Domain {sip_domain}: {body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Creates `what` (`extensions`, `devices`…) in `domain`; returns it.
    pub async fn create(&self, domain: &str, what: &str, body: Value) -> Value {
        let (status, created) = self
            .call(
                Method::POST,
                &format!("/api/v1/domains/{domain}/{what}"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 201, "creating {what} {body}: {created}");
        created
    }

    /// A fixed Device owned by a new Extension `number`: its SIP credentials.
    pub async fn device(&self, domain: &str, number: &str) -> Credentials {
        let extension = self
            .create(
                domain,
                "extensions",
                json!({"number": number, "display_name": format!("Ext {number}")}),
            )
            .await;
        let device = self
            .create(
                domain,
                "devices",
                json!({"label": format!("Desk {number}"), "mode": "fixed",
                       "owner_extension_id": extension["id"]}),
            )
            .await;
        let id = device["id"].as_str().unwrap().to_owned();
        self.credentials(domain, &id).await
    }

    /// A Device's SIP credentials as the API hands them out now.
    pub async fn credentials(&self, domain: &str, id: &str) -> Credentials {
        let id = id.to_owned();
        let secret = self
            .get(&format!("/api/v1/domains/{domain}/devices/{id}/sip-secret"))
            .await;
        Credentials {
            device_id: id,
            user: secret["sip_username"].as_str().unwrap().to_owned(),
            password: secret["sip_secret"].as_str().unwrap().to_owned(),
            realm: secret["realm"].as_str().unwrap().to_owned(),
        }
    }

    /// The Domain's registrations as the API lists them.
    pub async fn registrations(&self, domain: &str) -> Vec<Value> {
        let list = self
            .get(&format!("/api/v1/domains/{domain}/registrations"))
            .await;
        list["items"].as_array().unwrap().clone()
    }

    /// Waits (up to 10 s) until the Domain's registrations satisfy `done`; returns them.
    pub async fn registrations_until(
        &self,
        domain: &str,
        what: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let mut rows = Vec::new();
        for _ in 0..100 {
            rows = self.registrations(domain).await;
            if done(&rows) {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("within 10 s, the registrations never showed {what}: {rows:#?}");
    }
}

/// A SIP user's credentials as the API hands them out.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The Device.
    pub device_id: String,
    /// `sip_username`.
    pub user: String,
    /// `sip_secret`.
    pub password: String,
    /// The Domain's SIP domain.
    pub realm: String,
}

/// A phone: sipp on its own port of 127.0.0.1.
pub struct Phone {
    /// The port its Contact names.
    pub port: u16,
    /// The user agent it announces.
    pub user_agent: String,
    fs_port: u16,
    pub(crate) dir: PathBuf,
}

/// What one sipp run saw.
#[derive(Debug)]
pub struct Outcome {
    /// The status code of the last response sipp received.
    pub last_status: Option<u16>,
    /// Every message sipp sent and received.
    pub messages: String,
}

impl Phone {
    /// A phone talking to `fs`.
    pub fn new(fs: &FreeSwitch, user_agent: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "switchboard-sipp-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            port: free_port(),
            user_agent: user_agent.to_owned(),
            fs_port: fs.sip_port,
            dir,
        }
    }

    /// Registers (or with `expires` 0 unregisters) as `user@domain` with the credentials of
    /// `auth_user`/`password`, the From naming `from_domain`, under Call-ID `call_id`.
    #[allow(clippy::too_many_arguments)]
    pub async fn register_as(
        &self,
        user: &str,
        domain: &str,
        from_domain: &str,
        auth_user: &str,
        password: &str,
        call_id: &str,
        cseq: u32,
        expires: u32,
    ) -> Outcome {
        self.run(
            "register.xml",
            &[
                ("user", user),
                ("domain", domain),
                ("from_domain", from_domain),
                ("expires", &expires.to_string()),
                ("ua", &self.user_agent),
            ],
            &[
                "-au",
                auth_user,
                "-ap",
                password,
                "-cid_str",
                call_id,
                "-base_cseq",
                &cseq.to_string(),
            ],
        )
        .await
    }

    /// Registers with `credentials` in their own Domain under `call_id`.
    pub async fn register(&self, c: &Credentials, call_id: &str, cseq: u32) -> Outcome {
        self.register_as(
            &c.user,
            &c.realm,
            &c.realm,
            &c.user,
            &c.password,
            call_id,
            cseq,
            300,
        )
        .await
    }

    /// Unregisters the registration `call_id` (Expires: 0).
    pub async fn unregister(&self, c: &Credentials, call_id: &str, cseq: u32) -> Outcome {
        self.register_as(
            &c.user,
            &c.realm,
            &c.realm,
            &c.user,
            &c.password,
            call_id,
            cseq,
            0,
        )
        .await
    }

    async fn run(&self, scenario: &str, keys: &[(&str, &str)], extra: &[&str]) -> Outcome {
        self.run_for(scenario, keys, extra, 15).await
    }

    /// Runs `scenario` (a file in [`SIPP_DIR`], or a path) once, for at most `timeout_secs`.
    pub(crate) async fn run_for(
        &self,
        scenario: &str,
        keys: &[(&str, &str)],
        extra: &[&str],
        timeout_secs: u32,
    ) -> Outcome {
        let timeout = timeout_secs.to_string();
        let log = self
            .dir
            .join(format!("{}.log", uuid::Uuid::new_v4().simple()));
        let mut command = Command::new("sipp");
        command
            .arg(format!("127.0.0.1:{}", self.fs_port))
            .arg("-sf")
            .arg(Path::new(SIPP_DIR).join(scenario))
            .args(["-i", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args([
                "-m",
                "1",
                "-l",
                "1",
                "-nostdin",
                "-aa",
                "-timeout",
                timeout.as_str(),
                "-timeout_error",
            ])
            .arg("-trace_msg")
            .arg("-message_file")
            .arg(&log)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in keys {
            command.args(["-key", key, value]);
        }
        let output = command
            .output()
            .await
            .unwrap_or_else(|e| panic!("running sipp: {e}"));
        let messages = std::fs::read_to_string(&log).unwrap_or_default();
        let last_status = received(&messages)
            .iter()
            .filter_map(|m| m.strip_prefix("SIP/2.0 "))
            .filter_map(|l| l.get(..3)?.parse().ok())
            .next_back();
        if !output.status.success() {
            eprintln!(
                "sipp {scenario} did not complete ({}):\n{}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr),
                messages
            );
        }
        Outcome {
            last_status,
            messages,
        }
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The messages sipp received, in order, from its message log (`-trace_msg`).
pub fn received(messages: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = messages;
    while let Some(at) = rest.find("message received") {
        rest = &rest[at..];
        // The header line, then a blank line, then the message up to the next separator.
        let body = rest.split_once("\n\n").map(|(_, b)| b).unwrap_or_default();
        let end = body
            .find("\n-----------------------------------------------")
            .unwrap_or(body.len());
        found.push(body[..end].trim_start());
        rest = &body[end..];
    }
    found
}
