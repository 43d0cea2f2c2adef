//! One Domain's phones, compiled: for every provisionable Device (a MAC and a model from the
//! catalogue) its plan and the context its files are rendered from. The provisioning endpoint
//! and the "what would this phone get" preview both come from here, so they cannot disagree.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Offset, TimeZone, Utc};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::keys::{Catalogue, LoginChoice, PhonePlan, VOICEMAIL_CODE, phone_model, plan};
use super::models::PhoneModel;
use super::{Account, DeviceInfo, ProvisioningInfo, RenderContext, SipServer, TimeInfo, clean};
use crate::bindings::identity::calling_identity;
use crate::bindings::snapshot::Bindings;
use crate::store::devices;

/// What the platform says about every phone (from the server's configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// Host phones send SIP to; empty: the Domain's SIP domain.
    pub sip_proxy: String,
    /// SIP port.
    pub sip_port: u16,
    /// `udp`, `tcp` or `tls`.
    pub sip_transport: String,
    /// Registration expiry in seconds.
    pub register_expires: u32,
    /// Base URL of the provisioning endpoint as phones reach it, without a trailing slash.
    pub base_url: String,
    /// Seconds between periodic re-fetches.
    pub resync_secs: u32,
    /// NTP server when the Domain names none.
    pub ntp_server: String,
    /// Codecs in order of preference.
    pub codecs: Vec<String>,
}

/// The Domain-level inputs of its phones' files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainSide {
    /// Language (ISO 639-1).
    pub language: String,
    /// NTP server, if the Domain names one.
    pub ntp_server: Option<String>,
}

/// The secrets that go into an authenticated answer.
#[derive(Debug, Clone)]
pub struct Secrets {
    /// The SIP secret.
    pub sip: SecretString,
    /// The Device's provisioning password.
    pub provisioning: Option<SecretString>,
}

/// One provisionable phone.
#[derive(Debug, Clone)]
pub struct Phone {
    /// The Device.
    pub device_id: Uuid,
    /// Its SIP user name (also its provisioning user name).
    pub sip_user: String,
    /// Its model.
    pub model: &'static PhoneModel,
    /// What it gets.
    pub plan: PhonePlan,
    /// The context, without secrets.
    pub context: RenderContext,
    /// Its provisioning password, if it has one.
    pub password: Option<SecretString>,
    /// The SIP secret.
    pub sip_secret: SecretString,
    /// The tenant template body of its main file, if one applies.
    pub template_body: Option<String>,
}

impl Phone {
    /// The context with the secrets filled in, for an authenticated answer.
    pub fn context_with_secrets(&self) -> RenderContext {
        let mut ctx = self.context.clone();
        ctx.account.password = Some(clean(self.sip_secret.expose_secret()));
        ctx.provisioning.password = self.password.as_ref().map(|p| clean(p.expose_secret()));
        ctx
    }
}

/// Why a Device is not provisionable (for the preview and the logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotProvisionable {
    /// It has no MAC address.
    NoMac,
    /// Its vendor and model are not in the catalogue.
    UnknownModel,
    /// It is disabled.
    Disabled,
}

impl NotProvisionable {
    /// Human-readable reason.
    pub fn message(self) -> &'static str {
        match self {
            Self::NoMac => "the Device has no MAC address",
            Self::UnknownModel => {
                "the Device's vendor and model are not in the catalogue (GET /api/v1/phone-models)"
            }
            Self::Disabled => "the Device is disabled",
        }
    }
}

/// Whether a Device can be provisioned, and its model.
pub fn provisionable(d: &devices::Model) -> Result<&'static PhoneModel, NotProvisionable> {
    if !d.enabled {
        return Err(NotProvisionable::Disabled);
    }
    if d.mac_address.is_none() {
        return Err(NotProvisionable::NoMac);
    }
    phone_model(d.vendor.as_deref(), d.model.as_deref()).ok_or(NotProvisionable::UnknownModel)
}

/// The offset of a time zone from UTC at `now`, in minutes.
pub fn utc_offset_minutes(tz: &str, now: DateTime<Utc>) -> i32 {
    tz.parse::<chrono_tz::Tz>()
        .map(|tz| {
            tz.offset_from_utc_datetime(&now.naive_utc())
                .fix()
                .local_minus_utc()
                / 60
        })
        .unwrap_or(0)
}

/// Builds the context of one phone (without secrets).
#[allow(clippy::too_many_arguments)]
pub fn context(
    b: &Bindings,
    device: &devices::Model,
    model: &PhoneModel,
    plan: &PhonePlan,
    domain_side: &DomainSide,
    timezone: &str,
    platform: &Platform,
    now: DateTime<Utc>,
) -> RenderContext {
    let identity = calling_identity(b, device.id);
    let person = plan.person.and_then(|id| b.extensions.get(&id));
    let (display_name, label) = match person {
        Some(p) => (
            p.display_name.clone(),
            format!("{} {}", p.number, p.display_name),
        ),
        None => (device.label.clone(), "Logged out".to_owned()),
    };
    let mailbox = identity.as_ref().and_then(|i| i.mailbox.clone());
    let proxy = if platform.sip_proxy.trim().is_empty() {
        b.domain.sip_domain.clone()
    } else {
        platform.sip_proxy.clone()
    };
    RenderContext {
        device: DeviceInfo {
            mac: device.mac_address.clone().unwrap_or_default(),
            label: device.label.clone(),
        },
        model: model.info(),
        server: SipServer {
            domain: b.domain.sip_domain.clone(),
            proxy,
            port: platform.sip_port,
            transport: platform.sip_transport.clone(),
            register_expires: platform.register_expires,
        },
        account: Account {
            user: device.sip_username.clone(),
            password: None,
            display_name,
            label,
            extension: person.map(|p| p.number.clone()),
            mwi: mailbox.is_some(),
            mailbox,
            voicemail_code: VOICEMAIL_CODE.to_owned(),
        },
        time: TimeInfo {
            timezone: timezone.to_owned(),
            utc_offset_minutes: utc_offset_minutes(timezone, now),
            ntp_server: domain_side
                .ntp_server
                .clone()
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| platform.ntp_server.clone()),
        },
        language: domain_side.language.clone(),
        codecs: platform.codecs.clone(),
        provisioning: ProvisioningInfo {
            url: platform.base_url.trim_end_matches('/').to_owned(),
            resync_secs: platform.resync_secs,
            username: device.sip_username.clone(),
            password: None,
        },
        keys: plan.keys.clone(),
    }
    .sanitize()
}

/// A Domain's rows as the compiler needs them.
#[derive(Debug, Clone)]
pub struct DomainRows {
    /// The bindings snapshot.
    pub bindings: Bindings,
    /// Its Devices.
    pub devices: Vec<devices::Model>,
    /// Layouts, templates and what groups may choose.
    pub catalogue: Catalogue,
    /// Tenant template bodies by id.
    pub bodies: BTreeMap<Uuid, String>,
    /// Choices made at login, by Device.
    pub choices: BTreeMap<Uuid, LoginChoice>,
    /// Language and NTP.
    pub side: DomainSide,
}

/// Plans every provisionable Device of a Domain (no contexts, no secrets): for diffing what
/// phones show before and after a change.
pub fn plans(rows: &DomainRows) -> BTreeMap<Uuid, (String, PhonePlan)> {
    rows.devices
        .iter()
        .filter_map(|d| {
            let model = provisionable(d).ok()?;
            let choice = rows.choices.get(&d.id).copied().unwrap_or_default();
            let plan = plan(
                &rows.bindings,
                &rows.catalogue,
                d.id,
                model,
                choice,
                d.template_id,
            );
            Some((d.id, (d.sip_username.clone(), plan)))
        })
        .collect()
}

/// Compiles every provisionable Device of a Domain, keyed by MAC. `secrets` gives each
/// Device's decrypted secrets (a Device without them is left out).
pub fn compile(
    rows: &DomainRows,
    platform: &Platform,
    secrets: &HashMap<Uuid, Secrets>,
    now: DateTime<Utc>,
) -> HashMap<String, Phone> {
    let b = &rows.bindings;
    let mut out = HashMap::new();
    for d in &rows.devices {
        let (Ok(model), Some(mac), Some(s)) =
            (provisionable(d), d.mac_address.as_ref(), secrets.get(&d.id))
        else {
            continue;
        };
        let choice = rows.choices.get(&d.id).copied().unwrap_or_default();
        let plan = plan(b, &rows.catalogue, d.id, model, choice, d.template_id);
        let context = context(
            b,
            d,
            model,
            &plan,
            &rows.side,
            b.domain.time_zone.name(),
            platform,
            now,
        );
        let template_body = plan
            .template
            .as_ref()
            .and_then(|(id, _)| rows.bodies.get(id).cloned());
        out.insert(
            mac.clone(),
            Phone {
                device_id: d.id,
                sip_user: d.sip_username.clone(),
                model,
                plan,
                context,
                password: s.provisioning.clone(),
                sip_secret: s.sip.clone(),
                template_body,
            },
        );
    }
    out
}
