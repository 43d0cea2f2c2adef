//! The event stream of a node, read on a connection of its own by a lean frame reader.
//!
//! freeswitch-esl-tokio (kept for the commands) turns every header of every event into an
//! owned, normalised, percent-decoded `String` in an `IndexMap`: about 150 per channel event,
//! which caps one connection at 13–16 000 events/s. Ingestion reads about 30 of them. This
//! reader splits frames in one pass over a reusable buffer and keeps only those headers
//! ([`KEPT`]), percent-decoding them alone; the others cost a line scan and a name match.
//!
//! The protocol (`mod_event_socket.c`): a frame is a block of `Name: value` lines ended by a
//! blank line, then `Content-Length` bytes of body. An event (`text/event-plain`) carries its
//! own headers in the body, percent-encoded, and may carry an inner body after a blank line
//! (`BACKGROUND_JOB`), which the outer `Content-Length` already covers. FreeSWITCH writes
//! `\n` line ends.
//!
//! Anything that is not the protocol (a frame without `Content-Type`, a non-numeric or
//! oversized `Content-Length`, a header block longer than [`MAX_HEAD`]) is an error that ends
//! the link; nothing here panics, and the buffer never grows past one frame of [`MAX_FRAME`].

use std::borrow::Cow;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use percent_encoding::percent_decode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::ingest::Headers;

/// The largest frame accepted (FreeSWITCH's own events are a few KiB).
pub const MAX_FRAME: usize = 8 * 1024 * 1024;
/// The longest block of outer headers accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// Room reserved before each read.
const READ_CHUNK: usize = 64 * 1024;

/// Declares the kept headers: their lower-case names, in slot order, and the name → slot
/// match (compiled to a length switch and a few compares, no allocation).
macro_rules! kept_headers {
    ($($slot:literal => $name:literal),+ $(,)?) => {
        /// The headers ingestion reads (lower-case; matched case-insensitively, as
        /// FreeSWITCH reads them). Every other header of an event is skipped.
        pub const KEPT: &[&[u8]] = &[$($name),+];

        /// The slot of a lower-case header name.
        fn slot(lower: &[u8]) -> Option<usize> {
            match lower {
                $($name => Some($slot),)+
                _ => None,
            }
        }
    };
}

kept_headers! {
    0 => b"event-name",
    1 => b"event-subclass",
    2 => b"from-user",
    3 => b"username",
    4 => b"from-host",
    5 => b"realm",
    6 => b"to-host",
    7 => b"call-id",
    8 => b"profile-name",
    9 => b"contact",
    10 => b"network-ip",
    11 => b"network-port",
    12 => b"user-agent",
    13 => b"expires",
    14 => b"user",
    15 => b"host",
    16 => b"unique-id",
    17 => b"channel-name",
    18 => b"call-direction",
    19 => b"variable_user_name",
    20 => b"variable_sip_auth_username",
    21 => b"caller-username",
    22 => b"variable_sip_from_user",
    23 => b"variable_domain_name",
    24 => b"variable_sip_from_host",
    25 => b"caller-destination-number",
    26 => b"variable_dialed_domain",
    27 => b"variable_sip_invite_domain",
    28 => b"channel-presence-id",
    29 => b"answer-state",
    30 => b"gateway",
    31 => b"state",
    32 => b"ping-status",
    33 => b"status",
    34 => b"phrase",
    35 => b"vm-action",
    36 => b"vm-user",
    37 => b"vm-domain",
    38 => b"vm-caller-id-name",
    39 => b"vm-caller-id-number",
    40 => b"vm-file-path",
    41 => b"vm-uuid",
    42 => b"vm-message-len",
    43 => b"vm-timestamp",
}

const SLOTS: usize = 44;
/// Longer names are none of ours (the longest kept one has 26 bytes).
const LONGEST_KEPT: usize = 32;

/// The slot of a header name in any case.
fn slot_of(name: &[u8]) -> Option<usize> {
    if name.is_empty() || name.len() > LONGEST_KEPT {
        return None;
    }
    let mut lower = [0u8; LONGEST_KEPT];
    let lower = &mut lower[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    slot(lower)
}

/// Where a kept header's value lies in [`LeanEvent::text`]; `start == ABSENT` when the
/// event has no such header.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u16,
    end: u16,
}

const ABSENT: u16 = u16::MAX;

/// An event with only the headers ingestion reads, decoded into one string (the whole event
/// is one allocation and 200 bytes, cheap to queue). The kept values of one event may add up
/// to 64 KiB; a value beyond that is dropped (FreeSWITCH's are a few dozen bytes each).
#[derive(Clone, PartialEq, Eq)]
pub struct LeanEvent {
    text: String,
    spans: [Span; SLOTS],
}

impl Default for LeanEvent {
    fn default() -> Self {
        Self {
            text: String::new(),
            spans: [Span {
                start: ABSENT,
                end: ABSENT,
            }; SLOTS],
        }
    }
}

impl std::fmt::Debug for LeanEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for (name, _) in KEPT.iter().zip(&self.spans) {
            let name = String::from_utf8_lossy(name);
            if let Some(value) = self.header(&name) {
                map.entry(&name, &value);
            }
        }
        map.finish()
    }
}

impl LeanEvent {
    /// Reads the body of a `text/event-plain` frame: its header lines up to the first blank
    /// line (an inner body after it is not ours), keeping the [`KEPT`] ones, percent-decoded.
    /// A repeated header keeps its last value; a line without `:` is skipped.
    pub fn from_plain(body: &[u8]) -> Self {
        let mut event = Self::default();
        let mut rest = body;
        while !rest.is_empty() {
            let (line, next) = match memchr::memchr(b'\n', rest) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &rest[rest.len()..]),
            };
            rest = next;
            if line.is_empty() {
                break;
            }
            let Some(colon) = memchr::memchr(b':', line) else {
                continue;
            };
            let Some(slot) = slot_of(&line[..colon]) else {
                continue;
            };
            let value = &line[colon + 1..];
            let value = value.strip_prefix(b" ").unwrap_or(value);
            event.set(slot, value);
        }
        event
    }

    fn set(&mut self, slot: usize, encoded: &[u8]) {
        // Capacity for a typical event's kept values, so the string grows at most once or twice.
        if self.text.capacity() == 0 {
            self.text.reserve(256);
        }
        let start = self.text.len();
        let decoded: Cow<'_, str> = if memchr::memchr(b'%', encoded).is_some() {
            percent_decode(encoded).decode_utf8_lossy()
        } else {
            String::from_utf8_lossy(encoded)
        };
        let end = start + decoded.len();
        let (Ok(start16), Ok(end16)) = (u16::try_from(start), u16::try_from(end)) else {
            return;
        };
        if end16 == ABSENT {
            return;
        }
        self.text.push_str(&decoded);
        if let Some(span) = self.spans.get_mut(slot) {
            *span = Span {
                start: start16,
                end: end16,
            };
        }
    }
}

impl Headers for LeanEvent {
    fn header(&self, name: &str) -> Option<&str> {
        let span = self.spans.get(slot_of(name.as_bytes())?)?;
        if span.start == ABSENT {
            return None;
        }
        self.text
            .get(usize::from(span.start)..usize::from(span.end))
    }
}

/// Why the event stream ended.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The TCP connection could not be made.
    #[error("connecting the event socket failed: {0}")]
    Connect(std::io::Error),
    /// The handshake did not finish in time.
    #[error("the event socket handshake took longer than {0:?}")]
    HandshakeTimeout(Duration),
    /// `auth` was refused.
    #[error("the switch refused the password: {0}")]
    Auth(String),
    /// The subscription was refused.
    #[error("the switch refused the subscription: {0}")]
    Subscribe(String),
    /// The switch turned the connection away (`text/rude-rejection`: an ACL).
    #[error("the switch rejected the connection: {0}")]
    Rejected(String),
    /// No frame for the liveness timeout (FreeSWITCH sends `HEARTBEAT` every 20 s).
    #[error("liveness timeout: nothing from the switch for {0:?}")]
    Silent(Duration),
    /// The peer closed (`text/disconnect-notice` or end of stream).
    #[error("the switch closed the event connection: {0}")]
    Closed(String),
    /// Reading or writing failed.
    #[error("the event connection failed: {0}")]
    Io(std::io::Error),
    /// Bytes that are not the protocol.
    #[error("a malformed frame: {0}")]
    Malformed(String),
}

/// A frame, read and owned.
#[derive(Debug, PartialEq, Eq)]
enum Item {
    AuthRequest,
    Reply(String),
    Event(LeanEvent),
    Disconnect(String),
    Rejected(String),
    /// Anything else: API responses, logs, other event formats.
    Other,
}

/// What the buffer holds.
#[derive(Debug, PartialEq, Eq)]
enum Split {
    /// A frame and the bytes it used.
    Frame(Item, usize),
    /// Not yet a whole frame; at least this many bytes are needed.
    Incomplete(usize),
}

fn malformed(why: impl Into<String>) -> StreamError {
    StreamError::Malformed(why.into())
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_owned()
}

/// Splits the next frame off `buf`.
fn split(buf: &[u8]) -> Result<Split, StreamError> {
    let Some(head_end) = memchr::memmem::find(buf, b"\n\n") else {
        if buf.len() > MAX_HEAD {
            return Err(malformed(format!(
                "no end of headers within {MAX_HEAD} bytes"
            )));
        }
        return Ok(Split::Incomplete(buf.len() + 1));
    };
    if head_end > MAX_HEAD {
        return Err(malformed(format!(
            "no end of headers within {MAX_HEAD} bytes"
        )));
    }
    let mut content_type: Option<&[u8]> = None;
    let mut length: Option<usize> = None;
    let mut reply: &[u8] = b"";
    for line in buf[..head_end].split(|b| *b == b'\n') {
        let Some(colon) = memchr::memchr(b':', line) else {
            return Err(malformed(format!(
                "a header line without a colon: {:?}",
                lossy(line)
            )));
        };
        let name = &line[..colon];
        let value = line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"Content-Type") {
            content_type = Some(value);
        } else if name.eq_ignore_ascii_case(b"Content-Length") {
            let parsed = std::str::from_utf8(value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<usize>().ok())
                .ok_or_else(|| malformed(format!("Content-Length {:?}", lossy(value))))?;
            if parsed > MAX_FRAME {
                return Err(malformed(format!(
                    "Content-Length {parsed} is over {MAX_FRAME}"
                )));
            }
            length = Some(parsed);
        } else if name.eq_ignore_ascii_case(b"Reply-Text") {
            reply = value;
        }
    }
    let Some(content_type) = content_type else {
        return Err(malformed("a frame without Content-Type"));
    };
    let body_start = head_end + 2;
    let end = body_start + length.unwrap_or(0);
    if buf.len() < end {
        return Ok(Split::Incomplete(end));
    }
    let body = &buf[body_start..end];
    let item = match content_type {
        b"text/event-plain" => Item::Event(LeanEvent::from_plain(body)),
        b"auth/request" => Item::AuthRequest,
        b"command/reply" => Item::Reply(lossy(reply)),
        b"text/disconnect-notice" => Item::Disconnect(lossy(body)),
        b"text/rude-rejection" => Item::Rejected(lossy(body)),
        _ => Item::Other,
    };
    Ok(Split::Frame(item, end))
}

/// The event connection to one node.
pub struct EventStream<S = TcpStream> {
    io: S,
    buf: BytesMut,
    /// The buffer holds no whole frame below this length.
    need: usize,
    silence: Duration,
}

impl<S> std::fmt::Debug for EventStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("buffered", &self.buf.len())
            .field("silence", &self.silence)
            .finish_non_exhaustive()
    }
}

impl EventStream<TcpStream> {
    /// Connects, authenticates and subscribes (`event plain <subscription>`), all within
    /// `timeout`; afterwards no frame for `silence` ends the stream.
    pub async fn connect(
        host: &str,
        port: u16,
        password: &str,
        subscription: &str,
        timeout: Duration,
        silence: Duration,
    ) -> Result<Self, StreamError> {
        let handshake = async {
            let io = TcpStream::connect((host, port))
                .await
                .map_err(StreamError::Connect)?;
            // Only short commands are written; the setting matters little, but no delay.
            let _ = io.set_nodelay(true);
            let mut stream = Self::new(io, silence);
            stream.handshake(password, subscription).await?;
            Ok(stream)
        };
        tokio::time::timeout(timeout, handshake)
            .await
            .map_err(|_| StreamError::HandshakeTimeout(timeout))?
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> EventStream<S> {
    /// A stream over a connected socket, before the handshake.
    pub fn new(io: S, silence: Duration) -> Self {
        Self {
            io,
            buf: BytesMut::with_capacity(READ_CHUNK),
            need: 1,
            silence,
        }
    }

    /// `auth/request` → `auth`, then `event plain …`; each must be answered `+OK`.
    pub async fn handshake(
        &mut self,
        password: &str,
        subscription: &str,
    ) -> Result<(), StreamError> {
        match self.next_item().await? {
            Item::AuthRequest => {}
            Item::Rejected(text) => return Err(StreamError::Rejected(text)),
            other => return Err(malformed(format!("expected auth/request, got {other:?}"))),
        }
        self.write(&format!("auth {password}\n\n")).await?;
        let reply = self.reply().await?;
        if !reply.starts_with("+OK") {
            return Err(StreamError::Auth(reply));
        }
        self.write(&format!("event plain {subscription}\n\n"))
            .await?;
        let reply = self.reply().await?;
        if !reply.starts_with("+OK") {
            return Err(StreamError::Subscribe(reply));
        }
        Ok(())
    }

    /// The next event; other frames (replies, API responses, logs) are skipped.
    pub async fn next_event(&mut self) -> Result<LeanEvent, StreamError> {
        loop {
            match self.next_item().await? {
                Item::Event(event) => return Ok(event),
                Item::Disconnect(text) => return Err(StreamError::Closed(text)),
                Item::Rejected(text) => return Err(StreamError::Rejected(text)),
                Item::AuthRequest | Item::Reply(_) | Item::Other => {}
            }
        }
    }

    async fn reply(&mut self) -> Result<String, StreamError> {
        loop {
            match self.next_item().await? {
                Item::Reply(text) => return Ok(text),
                Item::Disconnect(text) => return Err(StreamError::Closed(text)),
                Item::Rejected(text) => return Err(StreamError::Rejected(text)),
                Item::AuthRequest | Item::Event(_) | Item::Other => {}
            }
        }
    }

    async fn write(&mut self, command: &str) -> Result<(), StreamError> {
        self.io
            .write_all(command.as_bytes())
            .await
            .map_err(StreamError::Io)?;
        self.io.flush().await.map_err(StreamError::Io)
    }

    async fn next_item(&mut self) -> Result<Item, StreamError> {
        loop {
            if self.buf.len() >= self.need {
                match split(&self.buf)? {
                    Split::Frame(item, used) => {
                        self.buf.advance(used);
                        self.need = 1;
                        return Ok(item);
                    }
                    Split::Incomplete(need) => self.need = need,
                }
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> Result<(), StreamError> {
        self.buf.reserve(READ_CHUNK);
        let read = tokio::time::timeout(self.silence, self.io.read_buf(&mut self.buf))
            .await
            .map_err(|_| StreamError::Silent(self.silence))?
            .map_err(StreamError::Io)?;
        if read == 0 {
            return Err(StreamError::Closed(if self.buf.is_empty() {
                "end of stream".to_owned()
            } else {
                format!("end of stream inside a frame ({} bytes)", self.buf.len())
            }));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/freeswitch/esl"
    );

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}/{name}")).unwrap_or_default()
    }

    /// Every frame of `bytes`, split off one after another.
    fn frames(bytes: &[u8]) -> Result<Vec<Item>, StreamError> {
        let mut rest = bytes;
        let mut out = Vec::new();
        while !rest.is_empty() {
            match split(rest)? {
                Split::Frame(item, used) => {
                    out.push(item);
                    rest = &rest[used..];
                }
                Split::Incomplete(_) => return Err(malformed("incomplete")),
            }
        }
        Ok(out)
    }

    fn event(name: &str) -> LeanEvent {
        match frames(&fixture(name)).ok().as_deref() {
            Some([Item::Event(e)]) => e.clone(),
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn every_kept_name_has_its_own_slot() {
        assert_eq!(KEPT.len(), SLOTS);
        for (i, name) in KEPT.iter().enumerate() {
            assert_eq!(slot(name), Some(i), "{}", String::from_utf8_lossy(name));
            assert!(name.len() <= LONGEST_KEPT);
        }
    }

    #[test]
    fn a_registration_keeps_its_headers_percent_decoded() {
        let e = event("event-plain-sofia-register.txt");
        assert_eq!(e.header("Event-Name"), Some("CUSTOM"));
        assert_eq!(e.header("Event-Subclass"), Some("sofia::register"));
        assert_eq!(e.header("event-subclass"), Some("sofia::register"));
        assert_eq!(e.header("call-id"), Some("1-25364@127.0.0.1"));
        assert_eq!(
            e.header("contact"),
            Some("\"\" <sip:d-7f3a@127.0.0.1:5072;transport=UDP>")
        );
        assert_eq!(e.header("expires"), Some("3600"));
        // Not kept, though present.
        assert_eq!(e.header("Core-UUID"), None);
        // Kept, but absent from this event.
        assert_eq!(e.header("Unique-ID"), None);
    }

    #[test]
    fn a_split_read_at_every_byte_yields_the_same_frames() {
        let mut stream = fixture("session-plain-start.txt");
        stream.extend(fixture("event-plain-channel_create.txt"));
        stream.extend(fixture("event-plain-background_job-status.txt"));
        stream.extend(fixture("event-plain-heartbeat.txt"));
        stream.extend(fixture("disconnect-notice.txt"));
        let whole = frames(&stream).unwrap_or_default();
        assert_eq!(whole.len(), 7);
        for cut in 0..stream.len() {
            // The first part alone: whole frames, then an incomplete rest.
            let (head, _) = stream.split_at(cut);
            let mut rest = head;
            let mut got = 0;
            loop {
                match split(rest) {
                    Ok(Split::Frame(item, used)) => {
                        assert_eq!(Some(&item), whole.get(got), "cut at {cut}");
                        got += 1;
                        rest = &rest[used..];
                    }
                    Ok(Split::Incomplete(need)) => {
                        assert!(need > rest.len(), "cut at {cut}");
                        break;
                    }
                    Err(e) => panic!("cut at {cut}: {e}"),
                }
            }
            assert!(got < whole.len(), "cut at {cut}");
        }
    }

    #[tokio::test]
    async fn the_stream_reads_frames_arriving_a_byte_at_a_time() {
        let mut bytes = fixture("session-plain-start.txt");
        bytes.extend(fixture("event-plain-sofia-expire.txt"));
        bytes.extend(fixture("disconnect-notice.txt"));
        // Room for the commands the stream writes back (nobody reads them here).
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let writer = tokio::spawn(async move {
            for b in bytes {
                if server.write_all(&[b]).await.is_err() {
                    break;
                }
                tokio::task::yield_now().await;
            }
            server
        });
        let mut stream = EventStream::new(client, Duration::from_secs(5));
        assert!(stream.handshake("ClueCon", "HEARTBEAT").await.is_ok());
        let e = stream.next_event().await.unwrap_or_default();
        assert_eq!(e.header("Event-Subclass"), Some("sofia::expire"));
        assert_eq!(e.header("user"), Some("d-91c0"));
        assert!(matches!(
            stream.next_event().await,
            Err(StreamError::Closed(text)) if text.starts_with("Disconnected, goodbye.")
        ));
        let Ok(mut server) = writer.await else {
            panic!("the writer");
        };
        let mut sent = vec![0u8; 64];
        let n = server.read(&mut sent).await.unwrap_or_default();
        assert_eq!(&sent[..n], b"auth ClueCon\n\nevent plain HEARTBEAT\n\n");
    }

    /// A frame of `content_type` around `body`.
    fn frame(content_type: &str, body: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "Content-Type: {content_type}\nContent-Length: {}\n\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn an_inner_body_is_skipped_and_the_next_frame_follows() {
        let mut bytes = fixture("event-plain-background_job-status.txt");
        bytes.extend(fixture("event-plain-heartbeat.txt"));
        let got = frames(&bytes).unwrap_or_default();
        let [Item::Event(job), Item::Event(beat)] = got.as_slice() else {
            panic!("{got:?}");
        };
        assert_eq!(job.header("Event-Name"), Some("BACKGROUND_JOB"));
        assert_eq!(beat.header("Event-Name"), Some("HEARTBEAT"));
        // A kept name inside the inner body is not a header of the event.
        let inner = frame(
            "text/event-plain",
            b"Event-Name: API\nContent-Length: 11\n\nrealm: evil",
        );
        let got = frames(&inner).unwrap_or_default();
        let [Item::Event(e)] = got.as_slice() else {
            panic!("{got:?}");
        };
        assert_eq!(e.header("realm"), None);
    }

    #[test]
    fn replies_and_other_frames_are_told_apart() {
        let got = frames(&fixture("session-plain-start.txt")).unwrap_or_default();
        assert_eq!(
            got,
            [
                Item::AuthRequest,
                Item::Reply("+OK accepted".into()),
                Item::Reply("+OK event listener enabled plain".into()),
            ]
        );
        assert_eq!(
            frames(&fixture("api-show-registrations-as-json.txt"))
                .unwrap_or_default()
                .as_slice(),
            [Item::Other]
        );
        let rude = frame("text/rude-rejection", b"Access Denied, go away.\n");
        assert_eq!(
            frames(&rude).unwrap_or_default(),
            [Item::Rejected("Access Denied, go away.".into())]
        );
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        for garbage in [
            "this is not an event socket frame\n\n",
            "Content-Length: 12\n\nno type here",
            "Content-Type: text/event-plain\nContent-Length: twelve\n\n",
            "Content-Type: text/event-plain\nContent-Length: -1\n\n",
            "Content-Type: text/event-plain\nContent-Length: 99999999999999999999999\n\n",
            "Content-Type: text/event-plain\nContent-Length: 8388609\n\n",
        ] {
            assert!(
                matches!(split(garbage.as_bytes()), Err(StreamError::Malformed(_))),
                "{garbage:?}"
            );
        }
        // An endless header block is refused once it passes the bound, not buffered.
        let endless = vec![b'x'; MAX_HEAD + 1];
        assert!(matches!(split(&endless), Err(StreamError::Malformed(_))));
        // Bytes that are not UTF-8 or not percent-encoding are kept as they come.
        let odd = frame("text/event-plain", b"Event-Name: A%zz\xff\nrealm: %E2%82");
        let got = frames(&odd).unwrap_or_default();
        let [Item::Event(e)] = got.as_slice() else {
            panic!("{got:?}");
        };
        assert_eq!(e.header("Event-Name"), Some("A%zz\u{fffd}"));
        assert_eq!(e.header("realm"), Some("\u{fffd}"));
        // A kept value past the 64 KiB the event holds is dropped, the others stay.
        let mut body = b"Event-Name: CUSTOM\nrealm: ".to_vec();
        body.extend(vec![b'a'; 70_000]);
        body.extend(b"\nEvent-Subclass: sofia%3A%3Aregister\n");
        let got = frames(&frame("text/event-plain", &body)).unwrap_or_default();
        let [Item::Event(e)] = got.as_slice() else {
            panic!("{got:?}");
        };
        assert_eq!(e.header("realm"), None);
        assert_eq!(e.header("Event-Subclass"), Some("sofia::register"));
        // The text plus four bytes per kept header (35 of them, the gateway state's included).
        assert!(std::mem::size_of::<LeanEvent>() <= (24 + 4 * SLOTS).next_multiple_of(8));
    }

    #[tokio::test]
    async fn a_refused_password_and_a_silent_switch_end_the_stream() {
        let (client, mut server) = tokio::io::duplex(4096);
        let failed = fixture("auth-failed-session.txt");
        let writer = tokio::spawn(async move {
            let _ = server.write_all(&failed).await;
            server
        });
        let mut stream = EventStream::new(client, Duration::from_secs(5));
        assert!(matches!(
            stream.handshake("wrong", "HEARTBEAT").await,
            Err(StreamError::Auth(text)) if text == "-ERR invalid"
        ));
        let _server = writer.await;

        let (client, _server) = tokio::io::duplex(4096);
        let mut stream = EventStream::new(client, Duration::from_millis(20));
        assert!(matches!(
            stream.next_event().await,
            Err(StreamError::Silent(_))
        ));
    }
}
