//! Real `switchboard serve` processes for the tests of several nodes on one database: each
//! node is the `switchboard` binary on a port of its own, with a configuration file written
//! for it, killed (SIGKILL) when dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::{ADMIN_EMAIL, ADMIN_PASSWORD, TEST_ENCRYPTION_KEY, switchboard_binary};

/// A free port of 127.0.0.1 (free when asked).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One `switchboard serve` process.
pub struct Node {
    /// Its `cluster.node_name`.
    pub name: String,
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// A client for it.
    pub client: reqwest::Client,
    dir: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Node {
    /// Starts a node named `name` on `database_url` with `extra` appended to its
    /// configuration file (TOML), and waits until it answers.
    pub async fn start(name: &str, database_url: &str, extra: &str) -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "switchboard-cluster-{name}-{}",
            uuid::Uuid::now_v7()
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let mut toml = format!(
            r#"database_url = "{database_url}"

[database]
max_connections = 6

[http]
host = "127.0.0.1"
port = {port}
workers = 1
shutdown_timeout_secs = 1

[bootstrap]
admin_email = "{ADMIN_EMAIL}"
admin_password = "{ADMIN_PASSWORD}"

[secrets]
encryption_key = "{TEST_ENCRYPTION_KEY}"

[cluster]
node_name = "{name}"

[freeswitch]
outbound_socket = "127.0.0.1:0"

[freeswitch.link]
reconnect_initial_ms = 100
reconnect_max_secs = 1
"#
        );
        toml.push_str(extra);
        let config = dir.join("switchboard.toml");
        std::fs::write(&config, toml).expect("writing the configuration");
        let log = std::fs::File::create(dir.join("log")).expect("a log file");
        let mut command = Command::new(switchboard_binary());
        for (key, _) in std::env::vars_os() {
            if key
                .to_string_lossy()
                .to_ascii_uppercase()
                .starts_with("SWITCHBOARD_")
            {
                command.env_remove(key);
            }
        }
        let level = if std::env::var_os("TEST_LOG").is_some() {
            "info"
        } else {
            "warn"
        };
        let child = command
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .current_dir(&dir)
            .env_remove("RUST_LOG")
            .env("SWITCHBOARD_LOG__LEVEL", level)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log file"))
            .stderr(log)
            .spawn()
            .expect("starting switchboard");
        let node = Self {
            name: name.to_owned(),
            child,
            address: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            dir,
        };
        node.wait_until_up().await;
        node
    }

    /// Waits (90 s at most) until it answers `/health/live`.
    pub async fn wait_until_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(r) = self
                .client
                .get(format!("{}/health/live", self.address))
                .send()
                .await
                && r.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {} did not come up: {}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// Kills the process (SIGKILL: no goodbye to anyone).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A platform administrator's access token.
    pub async fn token(&self) -> String {
        let r = self
            .client
            .post(format!("{}/api/v1/auth/login", self.address))
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
            .await
            .expect("logging in");
        let body: Value = r.json().await.expect("a login answer");
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {body}"))
            .to_owned()
    }

    /// `method path` with `token`: the status and the JSON body (`null` when none).
    pub async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("a request");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// POSTs `body` to `path`, expecting 201; returns what was created.
    pub async fn create(&self, token: &str, path: &str, body: Value) -> Value {
        let (status, created) = self.call(token, Method::POST, path, Some(body)).await;
        assert_eq!(status, 201, "POST {path} on {}: {created}", self.name);
        created
    }
}
