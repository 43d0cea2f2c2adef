//! Voicemail to e-mail: delivers the queued e-mails (`voicemail_emails`, queued when
//! mod_voicemail announces a new message in a box that has an address) over SMTP with
//! `lettre`.
//!
//! Every node runs a sender. Each due e-mail is claimed first (its next attempt pushed past the
//! delivery's timeout, only if no other node moved it meanwhile), so two nodes never send the
//! same e-mail, and one that dies mid-delivery leaves it due again. A failed attempt is
//! recorded with its reason and retried with exponential backoff; after `mail.max_attempts`
//! the e-mail is `failed`, shown in the API and retried only on demand. Nothing is dropped
//! silently: without `mail.smtp_host` the e-mails fail at once, saying so.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sea_orm::EntityTrait;
use secrecy::ExposeSecret;
use switchboard_domain::services::voicemail;
use switchboard_domain::store::{domains, voicemail_emails};
use switchboard_esl_bridge::voicemail as store;
use uuid::Uuid;

use crate::config::{MailConfig, MailTls};
use crate::state::AppState;

/// The largest audio attached (a 300 s message at 8 kHz is under 5 MB); a longer one is left
/// out, and the e-mail says so.
const MAX_ATTACHMENT: u64 = 20 * 1024 * 1024;

/// Days a sent or given-up e-mail stays listed.
const KEEP_DAYS: i64 = 30;

/// The SMTP side, built once from the configuration.
struct Sender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

fn sender(config: &MailConfig) -> Result<Option<Sender>, String> {
    let Some(host) = config.smtp_host.as_deref() else {
        return Ok(None);
    };
    let builder = match config.tls {
        MailTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
            .map_err(|e| format!("mail.smtp_host: {e}"))?,
        MailTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
            .map_err(|e| format!("mail.smtp_host: {e}"))?,
        MailTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
    };
    let mut builder = builder
        .port(config.smtp_port)
        .timeout(Some(Duration::from_secs(config.timeout_secs)));
    if let (Some(user), Some(password)) = (&config.username, &config.password) {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            password.expose_secret().to_owned(),
        ));
    }
    let from = config.from.parse().map_err(|e| format!("mail.from: {e}"))?;
    Ok(Some(Sender {
        transport: builder.build(),
        from,
    }))
}

/// `m:ss`.
fn length(secs: i32) -> String {
    let secs = secs.max(0);
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// The caller as people read it: `Name <number>`, or whichever is known.
fn caller(e: &voicemail_emails::Model) -> String {
    match (e.caller_name.trim(), e.caller_number.trim()) {
        ("", "") => "an unknown caller".to_owned(),
        (name, "") => name.to_owned(),
        ("", number) => number.to_owned(),
        (name, number) if name == number => number.to_owned(),
        (name, number) => format!("{name} <{number}>"),
    }
}

/// The e-mail for a message: a text part, and the audio when `audio` is given.
fn compose(
    from: &Mailbox,
    e: &voicemail_emails::Model,
    audio: Result<Option<Vec<u8>>, String>,
) -> Result<Message, String> {
    let to: Mailbox = e
        .to_address
        .parse()
        .map_err(|err| format!("the address {:?} is not usable: {err}", e.to_address))?;
    let mut text = format!(
        "A new voicemail message is in box {box_}.\n\nFrom:   {caller}\nLeft:   {left} UTC\nLength: {len}\n\n",
        box_ = e.mailbox,
        caller = caller(e),
        left = e.left_at.format("%Y-%m-%d %H:%M:%S"),
        len = length(e.duration_secs),
    );
    let attachment = match audio {
        Ok(Some(bytes)) => {
            text.push_str("The message is attached.\n");
            Some(bytes)
        }
        Ok(None) => {
            text.push_str("Dial *97 from your phone to listen to it.\n");
            None
        }
        Err(why) => {
            text.push_str(&format!(
                "The audio could not be attached ({why}); dial *97 from your phone to listen to it.\n"
            ));
            None
        }
    };
    let subject = format!(
        "Voicemail from {} ({}) in box {}",
        caller(e),
        length(e.duration_secs),
        e.mailbox
    );
    let builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .date(std::time::SystemTime::from(e.left_at));
    let body = SinglePart::plain(text);
    let message = match attachment {
        Some(bytes) => {
            let name = format!(
                "voicemail-{}-{}.wav",
                e.left_at.format("%Y%m%d-%H%M%S"),
                e.caller_number
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '+')
                    .collect::<String>()
            );
            let wav = ContentType::parse("audio/wav").map_err(|err| err.to_string())?;
            builder.multipart(
                MultiPart::mixed()
                    .singlepart(body)
                    .singlepart(Attachment::new(name).body(bytes, wav)),
            )
        }
        None => builder.singlepart(body),
    };
    message.map_err(|err| format!("composing the e-mail failed: {err}"))
}

/// The audio to attach: `Ok(None)` when the box does not want it, an error saying why it
/// cannot be read.
async fn audio_of(
    state: &AppState,
    e: &voicemail_emails::Model,
    sip_domain: &str,
) -> Result<Option<Vec<u8>>, String> {
    if !e.attach_audio {
        return Ok(None);
    }
    let storage = state
        .config
        .voicemail
        .storage_dir
        .as_deref()
        .ok_or("voicemail.storage_dir is not set")?;
    let file = store::local_file(storage, sip_domain, &e.mailbox, &e.audio_path)
        .ok_or("the message's file is not in the voicemail storage layout")?;
    let meta = tokio::fs::metadata(&file)
        .await
        .map_err(|err| format!("{}: {err}", file.display()))?;
    if meta.len() > MAX_ATTACHMENT {
        return Err(format!("{} bytes is too large to attach", meta.len()));
    }
    tokio::fs::read(&file)
        .await
        .map(Some)
        .map_err(|err| format!("{}: {err}", file.display()))
}

/// When attempt `attempts + 1` is due: the initial wait doubled per attempt, capped.
fn backoff(config: &MailConfig, attempts: i32) -> Duration {
    let exp = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    let secs = config
        .retry_initial_secs
        .saturating_mul(2u64.saturating_pow(exp))
        .min(config.retry_max_secs);
    Duration::from_secs(secs)
}

/// Delivers one claimed e-mail and records the outcome.
async fn deliver(
    state: &AppState,
    sender: Option<&Sender>,
    e: voicemail_emails::Model,
) -> Result<(), sea_orm::DbErr> {
    let config = &state.config.mail;
    let attempts = e.attempts + 1;
    let db = &state.db;
    let Some(sender) = sender else {
        voicemail::email_attempt_failed(
            db,
            e.id,
            attempts,
            "e-mail is off: mail.smtp_host is not set",
            None,
        )
        .await
        .map_err(|err| sea_orm::DbErr::Custom(err.to_string()))?;
        return Ok(());
    };
    let sip_domain = domains::Entity::find_by_id(e.domain_id)
        .one(db)
        .await?
        .map(|d| d.sip_domain)
        .unwrap_or_default();
    let audio = audio_of(state, &e, &sip_domain).await;
    let outcome = match compose(&sender.from, &e, audio) {
        Ok(message) => sender
            .transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|err| format!("the SMTP server: {err}")),
        Err(why) => Err(why),
    };
    let recorded = match outcome {
        Ok(()) => {
            tracing::info!(email = %e.id, mailbox = %e.mailbox, "voicemail e-mailed");
            let note = if e.delete_after {
                delete_from_box(state, &e, &sip_domain).await.err()
            } else {
                None
            };
            voicemail::email_sent(db, e.id, attempts, Utc::now(), note).await
        }
        Err(why) => {
            let give_up = u32::try_from(attempts).unwrap_or(u32::MAX) >= config.max_attempts;
            let next = (!give_up).then(|| {
                Utc::now()
                    + chrono::Duration::from_std(backoff(config, attempts))
                        .unwrap_or(chrono::Duration::hours(1))
            });
            tracing::warn!(email = %e.id, mailbox = %e.mailbox, attempts, give_up, error = %why, "a voicemail e-mail failed");
            voicemail::email_attempt_failed(db, e.id, attempts, &why, next).await
        }
    };
    recorded.map_err(|err| sea_orm::DbErr::Custom(err.to_string()))
}

/// Deletes an e-mailed message from its box (the box wants it); why not, when it could not.
async fn delete_from_box(
    state: &AppState,
    e: &voicemail_emails::Model,
    sip_domain: &str,
) -> Result<(), String> {
    let id = Uuid::parse_str(&e.message_id).map_err(|err| err.to_string())?;
    store::delete(&state.bridge, &e.mailbox, sip_domain, id)
        .await
        .map_err(|err| format!("sent, but the message stays in the box: {err}"))
}

/// One pass: claims and delivers every due e-mail (a few at a time).
pub async fn send_due(state: &AppState) -> Result<usize, String> {
    let sender = sender(&state.config.mail)?;
    send_due_with(state, sender.as_ref()).await
}

async fn send_due_with(state: &AppState, sender: Option<&Sender>) -> Result<usize, String> {
    let config = &state.config.mail;
    let mut sent = 0;
    loop {
        let now = Utc::now();
        let due = voicemail::due_emails(&state.db, now, 20)
            .await
            .map_err(|e| e.to_string())?;
        if due.is_empty() {
            return Ok(sent);
        }
        for e in due {
            let until: DateTime<Utc> = now
                + chrono::Duration::seconds(
                    i64::try_from(config.timeout_secs.saturating_mul(2) + 60).unwrap_or(3600),
                );
            if !voicemail::claim_email(&state.db, &e, until)
                .await
                .map_err(|e| e.to_string())?
            {
                continue;
            }
            deliver(state, sender, e).await.map_err(|e| e.to_string())?;
            sent += 1;
        }
    }
}

/// Delivers due e-mails every `mail.poll_interval_secs`, for as long as the server runs.
pub async fn send_forever(state: AppState) {
    let sender = match sender(&state.config.mail) {
        Ok(sender) => sender,
        Err(e) => {
            tracing::error!(error = %e, "voicemail e-mail is off: the mail configuration is unusable");
            None
        }
    };
    if sender.is_none() {
        tracing::info!("mail.smtp_host is not set: voicemail e-mails fail at once, visibly");
    }
    let interval = Duration::from_secs(state.config.mail.poll_interval_secs);
    let mut purged_at = std::time::Instant::now();
    loop {
        if let Err(e) = send_due_with(&state, sender.as_ref()).await {
            tracing::warn!(error = %e, "sending voicemail e-mails failed; trying again shortly");
        }
        // Sent and given-up e-mails are kept 30 days, to show in the API.
        if purged_at.elapsed() >= Duration::from_secs(3600) {
            purged_at = std::time::Instant::now();
            let before = Utc::now() - chrono::Duration::days(KEEP_DAYS);
            match voicemail::purge_emails(&state.db, before).await {
                Ok(n) if n > 0 => tracing::info!(count = n, "old voicemail e-mails forgotten"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "forgetting old voicemail e-mails failed"),
            }
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use switchboard_domain::services::voicemail::EMAIL_PENDING;

    fn email() -> voicemail_emails::Model {
        voicemail_emails::Model {
            id: Uuid::now_v7(),
            domain_id: Uuid::now_v7(),
            extension_id: Uuid::now_v7(),
            mailbox: "204".into(),
            message_id: Uuid::new_v4().to_string(),
            to_address: "dana@example.com".into(),
            caller_name: "Alice".into(),
            caller_number: "+4930123".into(),
            duration_secs: 72,
            left_at: Utc::now(),
            audio_path: "/s/voicemail/default/acme.test/204/msg_x.wav".into(),
            attach_audio: true,
            delete_after: false,
            status: EMAIL_PENDING.into(),
            attempts: 0,
            next_attempt_at: Utc::now(),
            last_error: None,
            sent_at: None,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn the_email_names_the_caller_and_carries_the_audio() {
        let from: Mailbox = "Voicemail <vm@example.com>".parse().unwrap();
        let message = compose(&from, &email(), Ok(Some(b"RIFF0000WAVE".to_vec()))).unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(
            raw.contains("Subject: Voicemail from Alice <+4930123> (1:12) in box 204"),
            "{raw}"
        );
        assert!(raw.contains("Content-Type: audio/wav"), "{raw}");
        assert!(raw.contains("voicemail-"), "{raw}");
        let plain = compose(&from, &email(), Err("no file".into())).unwrap();
        let raw = String::from_utf8(plain.formatted()).unwrap();
        assert!(raw.contains("could not be attached (no file)"), "{raw}");
        assert!(!raw.contains("audio/wav"));
    }

    #[test]
    fn a_bad_address_is_an_error_not_a_panic() {
        let from: Mailbox = "vm@example.com".parse().unwrap();
        let mut e = email();
        e.to_address = "not an address".into();
        assert!(compose(&from, &e, Ok(None)).is_err());
    }

    #[test]
    fn the_backoff_doubles_up_to_the_cap() {
        let config = MailConfig {
            retry_initial_secs: 60,
            retry_max_secs: 600,
            ..MailConfig::default()
        };
        let waits: Vec<u64> = (1..=6).map(|a| backoff(&config, a).as_secs()).collect();
        assert_eq!(waits, [60, 120, 240, 480, 600, 600]);
    }
}
