//! The voicemail store: mod_voicemail's messages, reached over the Event Socket.
//!
//! mod_voicemail keeps each message as a row of its own database on the node (`voicemail_msgs`
//! in `voicemail_default.db`, or the DSN its `odbc-dsn` names) and an audio file below the
//! node's storage folder (`<storage>/voicemail/default/<SIP domain>/<box>/msg_<uuid>.wav`).
//! switchboard never opens that database: it asks mod_voicemail through its API commands, so
//! the message lamp is updated by mod_voicemail itself (`update_mwi` after `vm_read` and
//! `vm_delete`, `voicemail_inject` after a move):
//!
//! - `vm_list <box>@<domain> text [<uuid>]`: one line per message,
//!   `created:read:box:domain:folder:path:uuid:cid name:cid number:seconds`;
//! - `vm_read <box>@<domain> <read|unread> <uuid>`, `vm_delete <box>@<domain> <uuid>` (both
//!   act on the uuid alone, so a message is always looked up in its box first);
//! - `vm_fsdb_msg_forward default <domain> <box> <uuid> <to domain> <to box>`, which copies the
//!   message (caller kept) into the other box as a new message.
//!
//! Every value put into a command is checked first ([`safe`]): a box, a SIP domain and a uuid
//! can never carry a space or a line break into the command.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use crate::link::{ApiUnavailable, NodeApi};

/// The mod_voicemail profile switchboard's dialplan uses.
pub const PROFILE: &str = "default";

/// One message as mod_voicemail lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// mod_voicemail's id of the message.
    pub id: Uuid,
    /// When it was left.
    pub created_at: DateTime<Utc>,
    /// When it was first heard or marked read (`None`: new).
    pub read_at: Option<DateTime<Utc>>,
    /// The folder (`inbox`).
    pub folder: String,
    /// The audio file as the node wrote it (a path on the FreeSWITCH host).
    pub path: String,
    /// The caller's name as it reached the box.
    pub caller_name: String,
    /// The caller's number.
    pub caller_number: String,
    /// Length in seconds.
    pub duration_secs: u32,
}

/// Why the store could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// No node could be asked (none connected, or the request was lost).
    #[error(transparent)]
    Unavailable(#[from] ApiUnavailable),
    /// A value that cannot be put into a command.
    #[error("{0:?} cannot be named to mod_voicemail")]
    Unsafe(String),
    /// mod_voicemail answered something this module cannot read.
    #[error("mod_voicemail answered something unexpected: {0}")]
    Unexpected(String),
}

/// A box number or SIP domain that can go into a command: non-empty, only letters, digits and
/// `.-_+*#`.
fn safe(value: &str) -> Result<&str, StoreError> {
    let ok = !value.is_empty()
        && value.len() <= 253
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+' | '*' | '#'));
    if ok {
        Ok(value)
    } else {
        Err(StoreError::Unsafe(value.to_owned()))
    }
}

fn epoch(text: &str) -> Option<DateTime<Utc>> {
    let secs: i64 = text.trim().parse().ok()?;
    if secs <= 0 {
        return None;
    }
    Utc.timestamp_opt(secs, 0).single()
}

/// Reads `vm_list`'s text answer. The caller's name is the one free-text field and may hold
/// `:`, so the line is split from both ends: seven fields from the left, two from the right,
/// the name in between. Lines of other boxes (never sent) and unreadable lines are skipped.
pub fn parse_list(body: &str, mailbox: &str, domain: &str) -> Vec<StoredMessage> {
    body.lines()
        .filter_map(|line| {
            let line = line.trim_end_matches('\r');
            let mut left = line.splitn(8, ':');
            let created = left.next()?;
            let read = left.next()?;
            let user = left.next()?;
            let dom = left.next()?;
            let folder = left.next()?;
            let path = left.next()?;
            let id = left.next()?;
            let rest = left.next()?;
            let (rest, secs) = rest.rsplit_once(':')?;
            let (name, number) = rest.rsplit_once(':')?;
            if user != mailbox || !dom.eq_ignore_ascii_case(domain) {
                return None;
            }
            Some(StoredMessage {
                id: Uuid::parse_str(id).ok()?,
                created_at: epoch(created)?,
                read_at: epoch(read),
                folder: folder.to_owned(),
                path: path.to_owned(),
                caller_name: name.to_owned(),
                caller_number: number.to_owned(),
                duration_secs: secs.trim().parse().ok()?,
            })
        })
        .collect()
}

/// The messages of a box, newest first.
pub async fn list(
    bridge: &impl NodeApi,
    mailbox: &str,
    domain: &str,
) -> Result<Vec<StoredMessage>, StoreError> {
    let body = bridge
        .api(&format!(
            "vm_list {}@{} text",
            safe(mailbox)?,
            safe(domain)?
        ))
        .await?;
    let mut messages = parse_list(&body, mailbox, domain);
    messages.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    Ok(messages)
}

/// One message of a box (`None`: not in this box).
pub async fn get(
    bridge: &impl NodeApi,
    mailbox: &str,
    domain: &str,
    id: Uuid,
) -> Result<Option<StoredMessage>, StoreError> {
    let body = bridge
        .api(&format!(
            "vm_list {}@{} text {id}",
            safe(mailbox)?,
            safe(domain)?
        ))
        .await?;
    Ok(parse_list(&body, mailbox, domain)
        .into_iter()
        .find(|m| m.id == id))
}

fn expect_ok(body: &str, what: &str) -> Result<(), StoreError> {
    let body = body.trim();
    // `vm_read`/`vm_delete` answer `+OK` (read as an empty body), the forward `-OK`.
    if body.is_empty() || body == "-OK" || body.starts_with("+OK") {
        Ok(())
    } else {
        Err(StoreError::Unexpected(format!("{what}: {body}")))
    }
}

/// Marks a message of the box read or unread (mod_voicemail updates the lamp).
pub async fn mark(
    bridge: &impl NodeApi,
    mailbox: &str,
    domain: &str,
    id: Uuid,
    read: bool,
) -> Result<(), StoreError> {
    let how = if read { "read" } else { "unread" };
    let body = bridge
        .api(&format!(
            "vm_read {}@{} {how} {id}",
            safe(mailbox)?,
            safe(domain)?
        ))
        .await?;
    expect_ok(&body, "vm_read")
}

/// Deletes a message of the box, its audio too (mod_voicemail updates the lamp).
pub async fn delete(
    bridge: &impl NodeApi,
    mailbox: &str,
    domain: &str,
    id: Uuid,
) -> Result<(), StoreError> {
    let body = bridge
        .api(&format!(
            "vm_delete {}@{} {id}",
            safe(mailbox)?,
            safe(domain)?
        ))
        .await?;
    expect_ok(&body, "vm_delete")
}

/// Copies a message into another box of the same SIP domain as a new message (the caller
/// kept); the caller of this deletes the original to make it a move.
pub async fn copy_to(
    bridge: &impl NodeApi,
    mailbox: &str,
    domain: &str,
    id: Uuid,
    to_mailbox: &str,
) -> Result<(), StoreError> {
    let body = bridge
        .api(&format!(
            "vm_fsdb_msg_forward {PROFILE} {domain} {mailbox} {id} {domain} {to}",
            domain = safe(domain)?,
            mailbox = safe(mailbox)?,
            to = safe(to_mailbox)?,
        ))
        .await?;
    expect_ok(&body, "vm_fsdb_msg_forward")
}

/// Lets the oldest messages of a full box go once a new one arrived: read ones first, then
/// unread, never the new one, until the box holds `max`; each is audited
/// (`voicemail.message.expire`). mod_voicemail announces a message just before storing it, so
/// this waits (a few seconds at most) until the list shows it.
pub async fn keep_at_most(
    nodes: impl NodeApi,
    db: sea_orm::DatabaseConnection,
    left: switchboard_domain::services::voicemail::LeftMessage,
    max: i32,
) {
    let max = usize::try_from(max.max(1)).unwrap_or(1);
    let mut messages = Vec::new();
    for _ in 0..25 {
        match list(&nodes, &left.mailbox, &left.sip_domain).await {
            Ok(found) => {
                let arrived = found.iter().any(|m| m.id.to_string() == left.message_id);
                messages = found;
                if arrived {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(mailbox = %left.mailbox, domain = %left.sip_domain, error = %e, "cannot list a box to keep it within its limit");
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    if messages.len() <= max {
        return;
    }
    let excess = messages.len() - max;
    let mut candidates: Vec<&StoredMessage> = messages
        .iter()
        .filter(|m| m.id.to_string() != left.message_id)
        .collect();
    candidates.sort_by_key(|m| (m.read_at.is_none(), m.created_at));
    let mut expired = Vec::new();
    for m in candidates.into_iter().take(excess) {
        match delete(&nodes, &left.mailbox, &left.sip_domain, m.id).await {
            Ok(()) => expired.push(m.id.to_string()),
            Err(e) => {
                tracing::warn!(mailbox = %left.mailbox, error = %e, "deleting a message past the box's limit failed");
                break;
            }
        }
    }
    tracing::info!(mailbox = %left.mailbox, domain = %left.sip_domain, count = expired.len(), "a full voicemail box let its oldest messages go");
    if let Err(e) =
        switchboard_domain::services::voicemail::audit_expired(&db, &left, &expired).await
    {
        tracing::warn!(error = %e, "auditing expired voicemail messages failed");
    }
}

/// Queues the e-mails owed for messages left while nobody heard the node announce them
/// (switchboard down, or this link down): after each (re)connect, every box with an address
/// is listed and each message newer than its address setting (and than a week) is queued — once,
/// like an announced one (the outbox is unique per box and message).
pub async fn catch_up_emails(nodes: impl NodeApi, db: sea_orm::DatabaseConnection) {
    use switchboard_domain::services::voicemail as vm;
    let boxes = match vm::mailing_boxes(&db).await {
        Ok(boxes) => boxes,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the boxes that e-mail their messages");
            return;
        }
    };
    let week_ago = chrono::Utc::now() - chrono::Duration::days(7);
    let mut queued = 0usize;
    for b in boxes {
        let messages = match list(&nodes, &b.mailbox, &b.sip_domain).await {
            Ok(messages) => messages,
            Err(e) => {
                tracing::warn!(mailbox = %b.mailbox, domain = %b.sip_domain, error = %e, "cannot list a box to catch up on its e-mails");
                continue;
            }
        };
        let since = b.since.max(week_ago);
        for m in messages.into_iter().filter(|m| m.created_at >= since) {
            let left = vm::LeftMessage {
                sip_domain: b.sip_domain.clone(),
                mailbox: b.mailbox.clone(),
                message_id: m.id.to_string(),
                caller_name: m.caller_name,
                caller_number: m.caller_number,
                duration_secs: i32::try_from(m.duration_secs).unwrap_or(i32::MAX),
                audio_path: m.path,
                left_at: m.created_at,
            };
            match vm::message_left(&db, &left, chrono::Utc::now()).await {
                Ok(arrival) if arrival.email.is_some() => queued += 1,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(mailbox = %b.mailbox, error = %e, "queueing a missed voicemail e-mail failed");
                }
            }
        }
    }
    if queued > 0 {
        tracing::info!(
            queued,
            "voicemail e-mails queued for messages left while nobody listened"
        );
    }
}

/// The local file of a message the node wrote at `path`: its last five parts
/// (`voicemail/<profile>/<SIP domain>/<box>/<file>`, mod_voicemail's layout) below `storage`
/// (the node's storage folder as this host sees it), whatever storage folder the node itself
/// has. `None` unless those parts are plain names naming this box.
pub fn local_file(
    storage: &std::path::Path,
    sip_domain: &str,
    mailbox: &str,
    path: &str,
) -> Option<std::path::PathBuf> {
    use std::path::{Component, Path};
    let parts: Vec<Component<'_>> = Path::new(path).components().collect();
    let tail = parts.get(parts.len().checked_sub(5)?..)?;
    let names: Vec<&str> = tail
        .iter()
        .map(|c| match c {
            Component::Normal(name) => name.to_str(),
            _ => None,
        })
        .collect::<Option<_>>()?;
    if names[0] != "voicemail" || !names[2].eq_ignore_ascii_case(sip_domain) || names[3] != mailbox
    {
        return None;
    }
    Some(
        names
            .iter()
            .fold(storage.to_path_buf(), |dir, part| dir.join(part)),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_message_file_is_found_below_the_local_storage_folder_and_only_for_its_box() {
        let storage = std::path::Path::new("/mnt/fs1");
        let fs_path = "/var/lib/freeswitch/storage/voicemail/default/acme.test/204/msg_a.wav";
        assert_eq!(
            local_file(storage, "acme.test", "204", fs_path),
            Some(std::path::PathBuf::from(
                "/mnt/fs1/voicemail/default/acme.test/204/msg_a.wav"
            ))
        );
        assert_eq!(local_file(storage, "acme.test", "205", fs_path), None);
        assert_eq!(local_file(storage, "other.test", "204", fs_path), None);
        assert_eq!(
            local_file(
                storage,
                "acme.test",
                "204",
                "/x/voicemail/default/acme.test/204/../y"
            ),
            None
        );
        assert_eq!(local_file(storage, "acme.test", "204", "msg_a.wav"), None);
        assert_eq!(
            local_file(
                storage,
                "acme.test",
                "204",
                "/s/other/default/acme.test/204/msg_a.wav"
            ),
            None
        );
    }

    #[test]
    fn a_listing_is_read_from_both_ends_and_only_for_its_box() {
        let body = "1764870000:0:204:acme.test:inbox:/var/lib/freeswitch/storage/voicemail/default/acme.test/204/msg_0f3c1a52-7a55-4d4c-9d5e-3b1f0e0c9a11.wav:0f3c1a52-7a55-4d4c-9d5e-3b1f0e0c9a11:Smith: John:+4930123:12\n\
1764870100:1764870200:204:acme.test:inbox:/s/msg_b.wav:5e0c1a52-7a55-4d4c-9d5e-3b1f0e0c9a12:Alice:200:4\n\
1764870100:0:205:acme.test:inbox:/s/msg_c.wav:6e0c1a52-7a55-4d4c-9d5e-3b1f0e0c9a13:Bob:201:4\n\
garbage line\n";
        let got = parse_list(body, "204", "acme.test");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].caller_name, "Smith: John");
        assert_eq!(got[0].caller_number, "+4930123");
        assert_eq!(got[0].duration_secs, 12);
        assert_eq!(got[0].read_at, None);
        assert_eq!(got[0].created_at.timestamp(), 1_764_870_000);
        assert!(
            got[0]
                .path
                .ends_with("msg_0f3c1a52-7a55-4d4c-9d5e-3b1f0e0c9a11.wav")
        );
        assert_eq!(got[1].read_at.map(|t| t.timestamp()), Some(1_764_870_200));
        assert!(parse_list("", "204", "acme.test").is_empty());
    }

    #[test]
    fn nothing_unsafe_reaches_a_command() {
        assert!(safe("204").is_ok());
        assert!(safe("acme.example.net").is_ok());
        for bad in ["", "204 x", "a\nb", "a/b", "x'y", "a@b"] {
            assert!(safe(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn answers_are_checked() {
        assert!(expect_ok("", "x").is_ok());
        assert!(expect_ok("-OK\n", "x").is_ok());
        assert!(expect_ok("-ERR can't find user or profile.", "x").is_err());
    }
}

/// A greeting's kind and where mod_voicemail keeps it in the box's folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GreetingKind {
    /// Greeting 1, the box's own (selected in mod_voicemail's preferences).
    Standard,
    /// Greeting 2, played when the Extension did not answer or is unreachable.
    Unavailable,
    /// Greeting 3, played when the Extension is busy.
    Busy,
    /// The recorded name (`recorded_name.wav`), played when there is no greeting.
    Name,
}

impl GreetingKind {
    /// Every kind, in order.
    pub const ALL: [Self; 4] = [Self::Standard, Self::Unavailable, Self::Busy, Self::Name];

    /// Its name in the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Unavailable => "unavailable",
            Self::Busy => "busy",
            Self::Name => "name",
        }
    }

    /// From its name in the API.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The file in the box's folder.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::Standard => "greeting_1.wav",
            Self::Unavailable => "greeting_2.wav",
            Self::Busy => "greeting_3.wav",
            Self::Name => "recorded_name.wav",
        }
    }
}

/// The box's folder below the node's storage folder as this host sees it.
pub fn box_folder(
    storage: &std::path::Path,
    sip_domain: &str,
    mailbox: &str,
) -> Result<std::path::PathBuf, StoreError> {
    Ok(storage
        .join("voicemail")
        .join(PROFILE)
        .join(safe(sip_domain)?)
        .join(safe(mailbox)?))
}

/// What a WAV file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavInfo {
    /// Samples per second.
    pub sample_rate: u32,
    /// Channels.
    pub channels: u16,
    /// Length in milliseconds.
    pub duration_ms: u64,
}

/// Checks that `bytes` is a WAV file FreeSWITCH plays: RIFF/WAVE, PCM (8–32 bit), A-law or
/// µ-law, 1 or 2 channels, 8–48 kHz, with audio, at most 5 minutes.
pub fn check_wav(bytes: &[u8]) -> Result<WavInfo, String> {
    let u16_at = |i: usize| {
        bytes
            .get(i..i + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |i: usize| {
        bytes
            .get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
        return Err("not a WAV file (RIFF/WAVE)".to_owned());
    }
    let mut at = 12;
    let mut format = None;
    let mut data = None;
    while let (Some(id), Some(len)) = (bytes.get(at..at + 4), u32_at(at + 4)) {
        let body = at + 8;
        let len = len as usize;
        match id {
            b"fmt " => {
                format = Some((
                    u16_at(body).ok_or("a truncated fmt chunk")?,
                    u16_at(body + 2).ok_or("a truncated fmt chunk")?,
                    u32_at(body + 4).ok_or("a truncated fmt chunk")?,
                    u32_at(body + 8).ok_or("a truncated fmt chunk")?,
                    u16_at(body + 14).ok_or("a truncated fmt chunk")?,
                ));
            }
            b"data" => data = Some(len.min(bytes.len().saturating_sub(body))),
            _ => {}
        }
        at = body.saturating_add(len).saturating_add(len % 2);
    }
    let (tag, channels, sample_rate, byte_rate, bits) = format.ok_or("no fmt chunk")?;
    if !matches!(tag, 1 | 6 | 7) {
        return Err(format!("audio format {tag} is not PCM, A-law or µ-law"));
    }
    if !matches!(channels, 1 | 2) {
        return Err(format!("{channels} channels (1 or 2 are played)"));
    }
    if !(8000..=48000).contains(&sample_rate) {
        return Err(format!("{sample_rate} Hz (8000–48000 are played)"));
    }
    if !matches!(bits, 8 | 16 | 24 | 32) || byte_rate == 0 {
        return Err(format!("{bits} bits per sample"));
    }
    let data = data.ok_or("no data chunk")?;
    if data == 0 {
        return Err("no audio".to_owned());
    }
    let duration_ms = data as u64 * 1000 / u64::from(byte_rate);
    if duration_ms > 300_000 {
        return Err(format!("{} s long (at most 300)", duration_ms / 1000));
    }
    Ok(WavInfo {
        sample_rate,
        channels,
        duration_ms,
    })
}

/// Tells mod_voicemail about a greeting written into the box's folder: the standard one
/// becomes the box's selected greeting, the name its recorded name (the busy and unavailable
/// ones are picked by the dialplan when they exist).
pub async fn greeting_written(
    bridge: &impl NodeApi,
    mailbox: &str,
    domain: &str,
    kind: GreetingKind,
) -> Result<(), StoreError> {
    let (mailbox, domain) = (safe(mailbox)?, safe(domain)?);
    let command = match kind {
        GreetingKind::Standard => {
            format!("vm_fsdb_pref_greeting_set {PROFILE} {domain} {mailbox} 1")
        }
        GreetingKind::Name => {
            let storage = bridge.api("global_getvar storage_dir").await?;
            let storage = storage.trim();
            if storage.is_empty() || storage.contains(char::is_whitespace) {
                return Err(StoreError::Unexpected(format!(
                    "the node's storage_dir: {storage:?}"
                )));
            }
            format!(
                "vm_fsdb_pref_recname_set {PROFILE} {domain} {mailbox} {storage}/voicemail/{PROFILE}/{domain}/{mailbox}/recorded_name.wav"
            )
        }
        GreetingKind::Unavailable | GreetingKind::Busy => return Ok(()),
    };
    let body = bridge.api(&command).await?;
    expect_ok(&body, "the greeting preference")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod wav_tests {
    use super::*;

    pub(crate) fn wav(rate: u32, bits: u16, data_len: usize) -> Vec<u8> {
        let mut b = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        b.extend(16u32.to_le_bytes());
        b.extend(1u16.to_le_bytes());
        b.extend(1u16.to_le_bytes());
        b.extend(rate.to_le_bytes());
        b.extend((rate * u32::from(bits) / 8).to_le_bytes());
        b.extend((bits / 8).to_le_bytes());
        b.extend(bits.to_le_bytes());
        b.extend(b"data");
        b.extend(u32::try_from(data_len).unwrap().to_le_bytes());
        b.extend(vec![0u8; data_len]);
        b
    }

    #[test]
    fn wav_files_are_checked_for_what_freeswitch_plays() {
        let ok = check_wav(&wav(8000, 16, 16000)).unwrap();
        assert_eq!(
            (ok.sample_rate, ok.channels, ok.duration_ms),
            (8000, 1, 1000)
        );
        assert!(check_wav(b"OggS....").is_err());
        assert!(check_wav(&wav(8000, 16, 0)).is_err());
        assert!(check_wav(&wav(4000, 16, 100)).is_err());
        assert!(check_wav(&wav(8000, 12, 100)).is_err());
        assert!(check_wav(&wav(8000, 16, 16000 * 301)).is_err());
        let mut truncated = wav(8000, 16, 100);
        truncated.truncate(30);
        assert!(check_wav(&truncated).is_err());
        assert!(check_wav(&[]).is_err());
    }

    #[test]
    fn greeting_kinds_name_their_files() {
        assert_eq!(GreetingKind::parse("busy"), Some(GreetingKind::Busy));
        assert_eq!(GreetingKind::parse("other"), None);
        assert_eq!(GreetingKind::Standard.file_name(), "greeting_1.wav");
        assert_eq!(GreetingKind::Name.file_name(), "recorded_name.wav");
    }
}
