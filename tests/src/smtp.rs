//! A real SMTP server for the tests (`mailin-embedded`, on its own threads): voicemail e-mails
//! are delivered to it over TCP exactly as to a mail relay. It keeps every message it accepted
//! and can be told to refuse (a temporary failure, `451` to `MAIL FROM`) to prove the retries.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailin_embedded::response::{INTERNAL_ERROR, OK};
use mailin_embedded::{Handler, Response, Server, SslConfig};

/// One message the sink accepted.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// The envelope sender.
    pub from: String,
    /// The envelope recipients.
    pub to: Vec<String>,
    /// The message as sent (headers and body, MIME encoded).
    pub data: String,
}

#[derive(Clone, Default)]
struct Session {
    shared: Arc<Shared>,
    current: Received,
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    refusing: AtomicBool,
}

impl Handler for Session {
    fn mail(&mut self, _ip: std::net::IpAddr, _domain: &str, from: &str) -> Response {
        // Refused at MAIL FROM (mailin keeps a session that refused at the end of DATA in its
        // DATA state, which no client recovers from).
        if self.shared.refusing.load(Ordering::SeqCst) {
            return INTERNAL_ERROR;
        }
        self.current = Received {
            from: from.to_owned(),
            ..Received::default()
        };
        OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        self.current.to.push(to.to_owned());
        OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.data.push_str(&String::from_utf8_lossy(buf));
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        self.shared
            .received
            .lock()
            .unwrap()
            .push(std::mem::take(&mut self.current));
        OK
    }
}

/// A running SMTP sink on 127.0.0.1 (it lives until the test process ends).
#[derive(Clone)]
pub struct SmtpSink {
    /// Its port.
    pub port: u16,
    shared: Arc<Shared>,
}

impl SmtpSink {
    /// Starts one on a free port.
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        let handler = Session {
            shared: shared.clone(),
            current: Received::default(),
        };
        let mut server = Server::new(handler);
        server
            .with_name("sink.test")
            .with_ssl(SslConfig::None)
            .unwrap()
            .with_num_threads(2)
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        Self { port, shared }
    }

    /// From now on, answers every message `451` (a temporary failure), or accepts again.
    pub fn refuse(&self, refusing: bool) {
        self.shared.refusing.store(refusing, Ordering::SeqCst);
    }

    /// Every message accepted so far.
    pub fn messages(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Waits (up to 20 s) until `count` messages were accepted; panics otherwise.
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        for _ in 0..200 {
            let got = self.messages();
            if got.len() >= count {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the SMTP sink got {} message(s), not {count}",
            self.messages().len()
        );
    }
}
