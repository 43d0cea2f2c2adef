//! Phone provisioning, as pure rules: the catalogue of phone models, the vendor templates and
//! their rendering, the Model Layouts (line keys) and which one a phone gets.
//!
//! - [`models`]: the built-in catalogue (vendor, model, line keys, expansion modules) and the
//!   file names each vendor's phones ask for.
//! - [`files`]: a requested file name → the MAC it names and which of the vendor's files it is.
//! - [`render`]: the minijinja environment with the built-in templates, rendering a
//!   [`RenderContext`] and checking a tenant's template by rendering it for a sample phone.
//! - [`keys`]: a layout's keys resolved against the Domain's current bindings (a BLF names the
//!   Extension, which follows the person), and which layout and template a phone gets.
//!
//! The stored shape lives in `store` (`provisioning_templates`, `model_layouts`), the use cases
//! in `services::provisioning`; the HTTP endpoint phones fetch from is in the api crate.

pub mod files;
pub mod keys;
pub mod models;
pub mod phones;
pub mod render;

use serde::Serialize;

/// Everything a template sees. Strings are plain text: [`RenderContext::sanitize`] removes
/// control characters (so a value can never start a new `key=value` line), and XML templates
/// escape on output (minijinja auto-escaping by the template's `.xml` name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenderContext {
    /// The phone.
    pub device: DeviceInfo,
    /// Its model from the catalogue.
    pub model: ModelInfo,
    /// Where it registers.
    pub server: SipServer,
    /// The SIP account (line 1).
    pub account: Account,
    /// Time zone and NTP.
    pub time: TimeInfo,
    /// Language of the phone's menus, e.g. `en`, `de`, `fr` (ISO 639-1).
    pub language: String,
    /// Codecs in order of preference, FreeSWITCH names (`PCMU`, `PCMA`, `G722`, `opus`).
    pub codecs: Vec<String>,
    /// Where and how often it fetches its configuration again.
    pub provisioning: ProvisioningInfo,
    /// The programmable keys, in slot order; slots without a key are absent.
    pub keys: Vec<LineKey>,
}

/// The phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    /// MAC, 12 lower-case hex digits.
    pub mac: String,
    /// Label, e.g. "Reception 2F".
    pub label: String,
}

/// The model, from the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelInfo {
    /// Catalogue id, e.g. `yealink-t54w`.
    pub id: String,
    /// Vendor id, e.g. `yealink`.
    pub vendor: String,
    /// Model name, e.g. `T54W`.
    pub name: String,
    /// Programmable keys on the phone itself.
    pub line_keys: u32,
    /// Expansion modules it can take.
    pub expansion_modules: u32,
    /// Keys per expansion module.
    pub keys_per_module: u32,
}

/// The SIP server the phone registers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SipServer {
    /// The Domain's SIP domain (the registrar's realm and the account's host part).
    pub domain: String,
    /// Host (or IP) the phone sends its SIP to (outbound proxy), e.g. `sip.example.net`.
    pub proxy: String,
    /// Port.
    pub port: u16,
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    /// Registration expiry in seconds.
    pub register_expires: u32,
}

/// The SIP account of the phone (the Device's own SIP identity), named for whoever it is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    /// SIP user name (also the authentication user).
    pub user: String,
    /// SIP secret; `None` in a preview (templates then write an empty value).
    pub password: Option<String>,
    /// Display name: the person's name, the owner's, or the device label when logged out.
    pub display_name: String,
    /// Short label for the line key / screen: "201 Alice" or "Logged out".
    pub label: String,
    /// The Extension number the phone is now, if any.
    pub extension: Option<String>,
    /// Mailbox whose message-waiting lamp it shows, if any.
    pub mailbox: Option<String>,
    /// What the voicemail button dials (`*97`).
    pub voicemail_code: String,
    /// True when the phone should subscribe to message-waiting for `mailbox`.
    pub mwi: bool,
}

/// Time zone and NTP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeInfo {
    /// IANA name of the Domain's time zone, e.g. `Europe/Berlin`.
    pub timezone: String,
    /// Its current offset from UTC in minutes (vendors that take an offset).
    pub utc_offset_minutes: i32,
    /// NTP server.
    pub ntp_server: String,
}

/// Where the phone fetches its configuration next time, and with which credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProvisioningInfo {
    /// Base URL of the provisioning endpoint, without a trailing slash
    /// (e.g. `https://pbx.example.net/provision`); the phone appends its own file name.
    pub url: String,
    /// Seconds between periodic re-fetches.
    pub resync_secs: u32,
    /// The Device's own provisioning user name.
    pub username: String,
    /// The Device's own provisioning password; `None` in a preview.
    pub password: Option<String>,
}

/// One programmable key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineKey {
    /// 1-based slot over the phone's keys then each module's (phone keys 1..=line_keys, then
    /// module 1, module 2 …).
    pub slot: u32,
    /// 0 for the phone itself, 1.. for an expansion module.
    pub module: u32,
    /// 1-based index within the phone or the module.
    pub index: u32,
    /// `line`, `blf`, `speed_dial`, `voicemail`, `park`, `dnd`, `login` or `logout`.
    pub kind: String,
    /// What it dials or watches: the Extension number (blf), the number (speed_dial), the
    /// feature code (voicemail `*97`, park slot `*71`…`*79`, login `*11`, logout `*12`); empty
    /// for `line` and `dnd`.
    pub value: String,
    /// Label shown next to the key.
    pub label: String,
    /// Account the key uses (1).
    pub line: u32,
}

/// Removes control characters from a value that goes into a phone's file.
pub fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

impl RenderContext {
    /// Removes control characters from every string (see [`clean`]).
    pub fn sanitize(mut self) -> Self {
        fn c(s: &mut String) {
            if s.chars().any(char::is_control) {
                *s = clean(s);
            }
        }
        fn co(s: &mut Option<String>) {
            if let Some(s) = s {
                c(s);
            }
        }
        c(&mut self.device.label);
        c(&mut self.server.domain);
        c(&mut self.server.proxy);
        c(&mut self.account.user);
        co(&mut self.account.password);
        c(&mut self.account.display_name);
        c(&mut self.account.label);
        co(&mut self.account.extension);
        co(&mut self.account.mailbox);
        c(&mut self.time.timezone);
        c(&mut self.time.ntp_server);
        c(&mut self.language);
        self.codecs.iter_mut().for_each(c);
        c(&mut self.provisioning.url);
        c(&mut self.provisioning.username);
        co(&mut self.provisioning.password);
        for k in &mut self.keys {
            c(&mut k.value);
            c(&mut k.label);
        }
        self
    }
}
