//! The outbound-socket server for the hot-desk feature codes `*11` (log in), `*12` (log out)
//! and `*13` (toggle), for voicemail retrieval: `*97` (my box: the box of whoever the phone
//! calls as, so a hot-desked person reaches their own) and `*98` (any box: asks for it), and
//! for Location sign-in: `*14<short code>` and `*15` sign the Extension the phone calls as in
//! and out ([`signin::sign_in_from_phone`], [`signin::sign_out_from_phone`]).
//!
//! Voicemail PINs are checked here, never by mod_voicemail: the Extension's PIN (argon2id) with
//! the hot-desk lockout ([`hotdesk::check_pin_from_phone`]); then the call is handed to
//! `voicemail check default <domain> <box>` with `voicemail_authorized=true`, so mod_voicemail
//! opens the box without asking.
//!
//! The dialplan hands the call over with `socket <address> async full`. The channel carries,
//! set by the dialplan, `switchboard_feature` (`login`, `logout` or `toggle`) and
//! `switchboard_feature_extension` (digits dialled after `*11`, maybe none), and from the
//! directory user `switchboard_domain_id`, `switchboard_domain` and `switchboard_device_id`.
//! The phone is identified by those (FreeSWITCH authenticated it), never by digits the caller
//! types. Login and logout go through the same domain code as the API
//! ([`hotdesk::login_from_phone`], [`hotdesk::logout_from_phone`]): PIN, lockout, rules and
//! audit, with origin `feature_code`.
//!
//! Every call is answered and hung up, whatever happens; three tries per call; a caller who
//! hangs up ends the flow at once (FreeSWITCH then reports the pending `play_and_get_digits`
//! as complete with `read_result=failure`, after `CHANNEL_HANGUP`). `linger` keeps the socket
//! open until we have seen the end, and since FreeSWITCH never closes a lingering socket
//! itself, we close it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use freeswitch_esl_tokio::{EslClient, EslEvent, EslEventStream, EventFormat};
use sea_orm::DatabaseConnection;
use secrecy::SecretString;
use switchboard_domain::DomainError;
use switchboard_domain::events::EventBus;
use switchboard_domain::services::Context;
use switchboard_domain::services::hotdesk::{self, Deps};
use switchboard_domain::services::signin;
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

/// Attempts per call.
pub const TRIES: usize = 3;
/// The longest an application may run before the call is given up (a prompt plus input).
const APP_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest a voicemail session on the socket may last.
const VOICEMAIL_SESSION_LIMIT: Duration = Duration::from_secs(3600);

/// The prompts, by file name inside the prompt folder.
///
/// The folder is FreeSWITCH's global variable `switchboard_prompts` (set in the shipped
/// `vars.xml` to `$${sounds_dir}/switchboard`, where switchboard's own prompts from
/// `freeswitch/sounds/` go), else `sound_prefix`, else `sounds_dir`. The names are those of the
/// en-us-callie sound pack, so `switchboard_prompts` may point at either set. A prompt the
/// FreeSWITCH host does not have is replaced by a tone ([`fallback`]): a missing sound file
/// never stops a login.
pub mod prompts {
    /// "Please enter your extension followed by pound."
    pub const ENTER_EXTENSION: &str = "ivr/ivr-please_enter_extension_followed_by_pound.wav";
    /// "Please enter your PIN followed by pound."
    pub const ENTER_PIN: &str = "ivr/ivr-please_enter_pin_followed_by_pound.wav";
    /// "The PIN or extension is invalid."
    pub const INVALID: &str = "ivr/ivr-pin_or_extension_is-invalid.wav";
    /// "You are now logged in."
    pub const LOGGED_IN: &str = "ivr/ivr-you_are_now_logged_in.wav";
    /// "You are now logged out."
    pub const LOGGED_OUT: &str = "ivr/ivr-you_are_now_logged_out.wav";
    /// "Access denied."
    pub const ACCESS_DENIED: &str = "ivr/ivr-access_denied.wav";

    /// Global variables naming the prompt folder, in order of preference.
    pub const FOLDER_VARIABLES: [&str; 3] = ["switchboard_prompts", "sound_prefix", "sounds_dir"];

    /// The tone played instead of a prompt FreeSWITCH does not have: one short beep asks for
    /// digits, two rising beeps confirm, a low tone refuses.
    pub fn fallback(prompt: &str) -> &'static str {
        match prompt {
            ENTER_EXTENSION | ENTER_PIN => "tone_stream://%(200,0,800)",
            LOGGED_IN | LOGGED_OUT => "tone_stream://%(120,60,660);%(120,0,880)",
            _ => "tone_stream://%(500,0,300)",
        }
    }
}

pub use crate::xml::dialplan::Feature;

/// What the dialplan and the directory told us about the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFacts {
    /// The feature.
    pub feature: Feature,
    /// Digits dialled after the code, if any.
    pub extension: Option<String>,
    /// The phone's Domain.
    pub domain_id: Uuid,
    /// The phone.
    pub device_id: Uuid,
    /// The SIP domain (for logs).
    pub sip_domain: String,
    /// The caller's SIP user (for the audit label).
    pub sip_user: String,
    /// The Extension the phone calls as (`switchboard_extension`): its voicemail box is `*97`'s.
    pub calls_as: Option<String>,
}

/// Reads the call's facts from the `connect` reply; `None` when the channel does not carry
/// them (not handed over by our dialplan, or a phone we do not know).
pub fn call_facts(lookup: impl Fn(&str) -> Option<String>) -> Option<CallFacts> {
    let var = |name: &str| {
        lookup(&format!("variable_{name}"))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty() && v != "_undef_")
    };
    Some(CallFacts {
        feature: Feature::from_variable(&var("switchboard_feature")?)?,
        extension: var("switchboard_feature_extension")
            .filter(|e| e.chars().all(|c| c.is_ascii_digit())),
        domain_id: var("switchboard_domain_id")?.parse().ok()?,
        device_id: var("switchboard_device_id")?.parse().ok()?,
        sip_domain: var("switchboard_domain").unwrap_or_default(),
        sip_user: var("user_name")
            .or_else(|| lookup("Caller-Username"))
            .unwrap_or_default(),
        calls_as: var("switchboard_extension").filter(|e| e.chars().all(|c| c.is_ascii_digit())),
    })
}

/// The caller went away (or the socket did).
#[derive(Debug)]
struct Gone;

/// One call on the outbound socket.
struct Call {
    client: EslClient,
    events: EslEventStream,
    hung_up: bool,
    /// The prompt folder on the FreeSWITCH host, once asked.
    prompt_folder: Option<String>,
    /// Each prompt's path, or its fallback tone, once checked.
    resolved: HashMap<&'static str, String>,
}

impl Call {
    /// Runs an application and waits until FreeSWITCH reports it complete; returns the
    /// completion event. A hang-up is noted; the completion still arrives after it.
    async fn execute(&mut self, app: &str, arg: &str) -> Result<EslEvent, Gone> {
        self.execute_for(app, arg, APP_TIMEOUT).await
    }

    /// [`Call::execute`] with its own limit (a voicemail session lasts as long as the caller
    /// listens).
    async fn execute_for(
        &mut self,
        app: &str,
        arg: &str,
        limit: Duration,
    ) -> Result<EslEvent, Gone> {
        if self.hung_up {
            return Err(Gone);
        }
        let id = Uuid::new_v4().to_string();
        let mut msg = EslEvent::new();
        msg.set_header("call-command", "execute");
        msg.set_header("execute-app-name", app);
        if !arg.is_empty() {
            msg.set_header("execute-app-arg", arg);
        }
        msg.set_header("Event-UUID", id.clone());
        let reply = self.client.sendmsg(None, msg).await.map_err(|_| Gone)?;
        if !reply.is_success() {
            return Err(Gone);
        }
        let wait = async {
            loop {
                let event = match self.events.recv().await {
                    Some(Ok(e)) => e,
                    _ => return Err(Gone),
                };
                match event.header_str("Event-Name") {
                    Some("CHANNEL_HANGUP") | Some("CHANNEL_HANGUP_COMPLETE") => {
                        self.hung_up = true;
                    }
                    Some("CHANNEL_EXECUTE_COMPLETE")
                        if event.header_str("Application-UUID") == Some(id.as_str()) =>
                    {
                        return Ok(event);
                    }
                    _ => {}
                }
            }
        };
        match tokio::time::timeout(limit, wait).await {
            Ok(Ok(event)) if !self.hung_up => Ok(event),
            _ => {
                self.hung_up = true;
                Err(Gone)
            }
        }
    }

    /// `api <command>` on the call's socket; the reply's body, trimmed.
    async fn api(&self, command: &str) -> Option<String> {
        let reply = self.client.api(command).await.ok()?;
        let body = reply.body()?.trim();
        (!body.is_empty() && !body.starts_with("-ERR")).then(|| body.to_owned())
    }

    /// What to play for `prompt`: its file in the prompt folder when FreeSWITCH has it
    /// (`file_exists`), else its tone. Asked once per call and prompt.
    async fn prompt(&mut self, prompt: &'static str) -> String {
        if let Some(found) = self.resolved.get(prompt) {
            return found.clone();
        }
        if self.prompt_folder.is_none() {
            let mut folder = String::new();
            for variable in prompts::FOLDER_VARIABLES {
                if let Some(value) = self.api(&format!("global_getvar {variable}")).await {
                    folder = value;
                    break;
                }
            }
            self.prompt_folder = Some(folder);
        }
        let folder = self.prompt_folder.as_deref().unwrap_or_default();
        let path = format!("{}/{prompt}", folder.trim_end_matches('/'));
        let chosen = if !folder.is_empty()
            && !path.contains(char::is_whitespace)
            && self.api(&format!("file_exists {path}")).await.as_deref() == Some("true")
        {
            path
        } else {
            tracing::warn!(
                prompt = %path,
                "a prompt is missing on FreeSWITCH (see switchboard_prompts in vars.xml); \
                 playing a tone instead"
            );
            prompts::fallback(prompt).to_owned()
        };
        self.resolved.insert(prompt, chosen.clone());
        chosen
    }

    async fn play(&mut self, prompt: &'static str) -> Result<(), Gone> {
        let file = self.prompt(prompt).await;
        self.execute("playback", &file).await.map(|_| ())
    }

    /// Prompts for digits once (the caller's tries are counted by the flow).
    async fn digits(
        &mut self,
        min: u8,
        max: u8,
        prompt: &'static str,
        var: &str,
    ) -> Result<Option<String>, Gone> {
        let prompt = self.prompt(prompt).await;
        let arg = format!("{min} {max} 1 5000 # {prompt} silence_stream://250 {var} \\d+ 3000");
        let done = self.execute("play_and_get_digits", &arg).await?;
        if done.header_str("variable_read_result") != Some("success") {
            return Ok(None);
        }
        Ok(done
            .header_str(&format!("variable_{var}"))
            .map(str::trim)
            .filter(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
            .map(str::to_owned))
    }

    /// Hangs up (unless the caller did) and closes the socket.
    async fn finish(self) {
        if !self.hung_up {
            let mut msg = EslEvent::new();
            msg.set_header("call-command", "hangup");
            msg.set_header("hangup-cause", "NORMAL_CLEARING");
            let _ = self.client.sendmsg(None, msg).await;
        }
        let _ = self.client.disconnect().await;
    }
}

/// The feature-code server.
#[derive(Clone)]
pub struct FeatureCodes {
    db: DatabaseConnection,
    bus: EventBus,
    allowed: Arc<dyn Fn(IpAddr) -> bool + Send + Sync>,
}

impl std::fmt::Debug for FeatureCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureCodes").finish_non_exhaustive()
    }
}

impl FeatureCodes {
    /// A server acting on `db`, publishing on `bus`.
    pub fn new(db: DatabaseConnection, bus: EventBus) -> Self {
        Self {
            db,
            bus,
            allowed: Arc::new(|_| true),
        }
    }

    /// Accepts calls only from peers for which `allowed` holds (FreeSWITCH's addresses): the
    /// channel variables name the phone, so nobody else may speak for FreeSWITCH.
    pub fn allow(mut self, allowed: impl Fn(IpAddr) -> bool + Send + Sync + 'static) -> Self {
        self.allowed = Arc::new(allowed);
        self
    }

    /// Serves `listener` (already bound, so start-up fails early on a taken port) forever.
    pub fn spawn(self, listener: std::net::TcpListener) -> std::io::Result<SocketAddr> {
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) if !(self.allowed)(peer.ip()) => {
                        tracing::warn!(peer = %peer, "a feature-code connection from an address that is not allowed");
                        drop(stream);
                    }
                    Ok((stream, _)) => {
                        let server = self.clone();
                        tokio::spawn(async move { server.handle(stream).await });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a feature-code call failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Ok(addr)
    }

    /// One call, from `connect` to closing the socket.
    pub async fn handle(&self, stream: TcpStream) {
        let (client, events) = EslClient::accept_outbound_stream(stream);
        let facts = match client.connect_session().await {
            Ok(reply) => call_facts(|name| reply.header(name).map(str::to_owned)),
            Err(e) => {
                tracing::warn!(error = %e, "a feature-code call did not connect");
                return;
            }
        };
        let mut call = Call {
            client,
            events,
            hung_up: false,
            prompt_folder: None,
            resolved: HashMap::new(),
        };
        if call.client.myevents(EventFormat::Plain).await.is_err()
            || call.client.linger(None).await.is_err()
        {
            call.finish().await;
            return;
        }
        let _ = self.run(&mut call, facts).await;
        call.finish().await;
    }

    async fn run(&self, call: &mut Call, facts: Option<CallFacts>) -> Result<(), Gone> {
        call.execute("answer", "").await?;
        let Some(facts) = facts else {
            tracing::warn!("a feature-code call without the switchboard variables");
            return call.play(prompts::ACCESS_DENIED).await;
        };
        let label = format!(
            "{} on {}@{}",
            facts.feature.code(),
            facts.sip_user,
            facts.sip_domain
        );
        let ctx = Context::system(&label);
        let deps = Deps {
            db: &self.db,
            bus: &self.bus,
        };
        let logout = match facts.feature {
            Feature::Voicemail | Feature::VoicemailAny => {
                return self.voicemail(call, deps, &ctx, &facts).await;
            }
            Feature::LocationSignIn | Feature::LocationSignOut => {
                return self.location(call, deps, &ctx, &facts).await;
            }
            Feature::TimeConditionOverride => {
                return self.time_condition(call, &ctx, &facts).await;
            }
            Feature::Login => false,
            Feature::Logout => true,
            Feature::Toggle => {
                match hotdesk::logged_in_at(&self.db, facts.domain_id, facts.device_id).await {
                    Ok(current) => current.is_some(),
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the phone's session failed");
                        return call.play(prompts::ACCESS_DENIED).await;
                    }
                }
            }
        };
        if logout {
            return match hotdesk::logout_from_phone(deps, &ctx, facts.domain_id, facts.device_id)
                .await
            {
                Ok(_) => call.play(prompts::LOGGED_OUT).await,
                Err(e) => {
                    tracing::info!(error = %e, phone = %label, "feature-code logout refused");
                    call.play(prompts::ACCESS_DENIED).await
                }
            };
        }
        self.login(call, deps, &ctx, &facts).await
    }

    /// `*36<code>`: switches the override of the Domain's time condition with that code
    /// (`auto` → the opposite of the schedule now; an override → `auto`). Any phone of the
    /// Domain that calls as an Extension may (a logged-out phone may not); audited with the
    /// phone. Two rising beeps: an override is now on (the lamp lit); one falling: the
    /// schedule rules again; a low tone: no such code, or refused.
    async fn time_condition(
        &self,
        call: &mut Call,
        ctx: &Context,
        facts: &CallFacts,
    ) -> Result<(), Gone> {
        if facts.calls_as.is_none() {
            return call.play(prompts::ACCESS_DENIED).await;
        }
        let code = facts.extension.as_deref().unwrap_or_default();
        match switchboard_domain::services::call_flows::toggle_override_by_code(
            &self.db,
            &self.bus,
            ctx,
            facts.domain_id,
            code,
        )
        .await
        {
            Ok(Some(flow)) => {
                let tone = if flow.override_mode
                    == switchboard_domain::routing::flows::OverrideMode::Auto
                {
                    "tone_stream://%(200,60,880);%(200,0,660)"
                } else {
                    "tone_stream://%(120,60,660);%(120,0,880)"
                };
                call.execute("playback", tone).await.map(|_| ())
            }
            Ok(None) => call.play(prompts::ACCESS_DENIED).await,
            Err(e) => {
                tracing::warn!(error = %e, code, "switching a time condition's override failed");
                call.play(prompts::ACCESS_DENIED).await
            }
        }
    }

    /// `*14<short code>` / `*15`: the Extension the phone calls as signs in to that Location,
    /// or out of its own. The phone's identity is the proof (as for `*12`); a logged-out
    /// hot-desk phone calls as nobody and is refused.
    async fn location(
        &self,
        call: &mut Call,
        deps: Deps<'_>,
        ctx: &Context,
        facts: &CallFacts,
    ) -> Result<(), Gone> {
        let Some(number) = facts.calls_as.as_deref() else {
            return call.play(prompts::ACCESS_DENIED).await;
        };
        let result = match (facts.feature, facts.extension.as_deref()) {
            (Feature::LocationSignIn, Some(code)) => {
                signin::sign_in_from_phone(deps, ctx, facts.domain_id, number, code)
                    .await
                    .map(|_| prompts::LOGGED_IN)
            }
            (Feature::LocationSignOut, _) => {
                signin::sign_out_from_phone(deps, ctx, facts.domain_id, number)
                    .await
                    .map(|_| prompts::LOGGED_OUT)
            }
            _ => return call.play(prompts::INVALID).await,
        };
        match result {
            Ok(prompt) => call.play(prompt).await,
            Err(e) => {
                tracing::info!(error = %e, extension = number, code = ?facts.extension, "a Location sign-in from a phone was refused");
                call.play(prompts::ACCESS_DENIED).await
            }
        }
    }

    /// `*97` / `*98`: the box, its PIN (three tries, the hot-desk lockout), then mod_voicemail
    /// already authorised.
    async fn voicemail(
        &self,
        call: &mut Call,
        deps: Deps<'_>,
        ctx: &Context,
        facts: &CallFacts,
    ) -> Result<(), Gone> {
        let mut mailbox = match facts.feature {
            Feature::Voicemail => match facts.calls_as.clone() {
                Some(own) => Some(own),
                // A logged-out hot-desk phone calls as nobody: it has no box of its own.
                None => return call.play(prompts::ACCESS_DENIED).await,
            },
            _ => facts.extension.clone(),
        };
        let fixed = facts.feature == Feature::Voicemail;
        for _ in 0..TRIES {
            let number = match mailbox.clone() {
                Some(n) => n,
                None => match call
                    .digits(1, 10, prompts::ENTER_EXTENSION, "sb_box")
                    .await?
                {
                    Some(n) => n,
                    None => continue,
                },
            };
            mailbox = Some(number.clone());
            let Some(pin) = call.digits(1, 16, prompts::ENTER_PIN, "sb_pin").await? else {
                continue;
            };
            let result = hotdesk::check_pin_from_phone(
                deps,
                ctx,
                facts.domain_id,
                facts.device_id,
                &number,
                SecretString::from(pin),
                "voicemail",
            )
            .await;
            match result {
                Ok(ext) if ext.voicemail_enabled && ext.enabled => {
                    call.execute("set", "voicemail_authorized=true").await?;
                    let arg = format!("check default {} {}", facts.sip_domain, ext.number);
                    return call
                        .execute_for("voicemail", &arg, VOICEMAIL_SESSION_LIMIT)
                        .await
                        .map(|_| ());
                }
                Ok(ext) => {
                    tracing::info!(box_ = %ext.number, "voicemail retrieval of an Extension without a box");
                    return call.play(prompts::ACCESS_DENIED).await;
                }
                Err(DomainError::Validation(errors)) => {
                    if !fixed && errors.iter().any(|e| e.field == "extension") {
                        mailbox = None;
                    }
                    call.play(prompts::INVALID).await?;
                }
                Err(DomainError::Locked { .. }) => return call.play(prompts::ACCESS_DENIED).await,
                Err(e) => {
                    tracing::info!(error = %e, "voicemail retrieval refused");
                    return call.play(prompts::ACCESS_DENIED).await;
                }
            }
        }
        call.play(prompts::ACCESS_DENIED).await
    }

    async fn login(
        &self,
        call: &mut Call,
        deps: Deps<'_>,
        ctx: &Context,
        facts: &CallFacts,
    ) -> Result<(), Gone> {
        let mut extension = facts.extension.clone();
        for _ in 0..TRIES {
            let number = match extension.clone() {
                Some(n) => n,
                None => match call
                    .digits(1, 10, prompts::ENTER_EXTENSION, "sb_ext")
                    .await?
                {
                    Some(n) => n,
                    None => continue,
                },
            };
            extension = Some(number.clone());
            let Some(pin) = call.digits(1, 16, prompts::ENTER_PIN, "sb_pin").await? else {
                continue;
            };
            let result = hotdesk::login_from_phone(
                deps,
                ctx,
                facts.domain_id,
                facts.device_id,
                &number,
                SecretString::from(pin),
            )
            .await;
            match result {
                Ok(_) => return call.play(prompts::LOGGED_IN).await,
                Err(DomainError::Validation(errors)) => {
                    if errors.iter().any(|e| e.field == "extension") {
                        extension = None;
                    }
                    call.play(prompts::INVALID).await?;
                }
                Err(DomainError::Locked { .. }) => return call.play(prompts::ACCESS_DENIED).await,
                Err(e) => {
                    tracing::info!(error = %e, "feature-code login refused");
                    return call.play(prompts::ACCESS_DENIED).await;
                }
            }
        }
        call.play(prompts::ACCESS_DENIED).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(vars: &[(&str, &str)]) -> Option<CallFacts> {
        call_facts(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn the_phone_comes_from_the_channel_and_typed_digits_are_only_an_extension() {
        let d = Uuid::now_v7().to_string();
        let p = Uuid::now_v7().to_string();
        let base = [
            ("variable_switchboard_feature", "login"),
            ("variable_switchboard_domain_id", d.as_str()),
            ("variable_switchboard_device_id", p.as_str()),
            ("variable_switchboard_domain", "acme.example.net"),
            ("variable_user_name", "d-7f3a"),
        ];
        let got = facts(&base);
        assert_eq!(got.as_ref().map(|f| f.feature), Some(Feature::Login));
        assert_eq!(got.as_ref().and_then(|f| f.extension.clone()), None);
        let mut typed = base.to_vec();
        typed.push(("variable_switchboard_feature_extension", "201"));
        assert_eq!(
            facts(&typed).and_then(|f| f.extension),
            Some("201".to_owned())
        );
        let mut odd = base.to_vec();
        odd.push(("variable_switchboard_feature_extension", "20*1"));
        assert_eq!(facts(&odd).and_then(|f| f.extension), None);
        // Without the directory's variables the call is not ours.
        assert_eq!(facts(&base[..2]), None);
        let mut bad = base.to_vec();
        bad[0] = ("variable_switchboard_feature", "reboot");
        assert_eq!(facts(&bad), None);
    }

    #[test]
    fn star_97_opens_the_box_the_phone_calls_as_never_one_the_caller_names() {
        let d = Uuid::now_v7().to_string();
        let p = Uuid::now_v7().to_string();
        let mut vars = vec![
            ("variable_switchboard_feature", "voicemail"),
            ("variable_switchboard_domain_id", d.as_str()),
            ("variable_switchboard_device_id", p.as_str()),
            ("variable_switchboard_domain", "acme.example.net"),
        ];
        // A logged-out hot-desk phone calls as nobody: no box of its own.
        let got = facts(&vars);
        assert_eq!(got.as_ref().map(|f| f.feature), Some(Feature::Voicemail));
        assert_eq!(got.and_then(|f| f.calls_as), None);
        // The directory's effective Extension (the person logged in, or the owner).
        vars.push(("variable_switchboard_extension", "204"));
        assert_eq!(
            facts(&vars).and_then(|f| f.calls_as),
            Some("204".to_owned())
        );
        vars.pop();
        vars.push(("variable_switchboard_extension", "20;4"));
        assert_eq!(facts(&vars).and_then(|f| f.calls_as), None);
        vars[0] = ("variable_switchboard_feature", "voicemail_any");
        vars.push(("variable_switchboard_feature_extension", "201"));
        let any = facts(&vars);
        assert_eq!(any.as_ref().map(|f| f.feature), Some(Feature::VoicemailAny));
        assert_eq!(any.and_then(|f| f.extension), Some("201".to_owned()));
    }
}
