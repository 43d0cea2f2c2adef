//! Read views over the bindings: an Extension's ring plan and a Device's calling identity,
//! exactly as the directory and dialplan will use them.

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use switchboard_domain::bindings::identity::{
    CallerIds, CallingIdentity, EmergencyCallerId, IdentityBinding as DomainBinding,
};
use switchboard_domain::bindings::ring_plan::{
    Disposition as DomainDisposition, Fallback as DomainFallback, ForwardRule as DomainForwardRule,
    Hunt, LocationRing as DomainLocationRing, RingPlan, RingTarget,
    TargetSource as DomainTargetSource,
};
use switchboard_domain::bindings::snapshot::SessionOrigin as DomainSessionOrigin;
use switchboard_domain::services::views::{self, RingPlanView};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::dto::SessionOrigin;
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

const PROBLEM: &str = "application/problem+json";

impl From<DomainSessionOrigin> for SessionOrigin {
    fn from(origin: DomainSessionOrigin) -> Self {
        match origin {
            DomainSessionOrigin::FeatureCode => Self::FeatureCode,
            DomainSessionOrigin::Api => Self::Api,
            DomainSessionOrigin::Admin => Self::Admin,
            DomainSessionOrigin::Home => Self::Home,
        }
    }
}

/// Where a Location target sits in its Location's ring.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "strategy", rename_all = "snake_case")]
pub enum LocationRing {
    /// Rings with the personal group.
    Simultaneous,
    /// One step of the Location's own hunt.
    Sequential {
        /// 1-based step.
        position: u32,
    },
}

/// Why a target rings.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TargetSource {
    /// The Extension's own SIP registration.
    DirectRegistration,
    /// A fixed device it owns.
    FixedDevice,
    /// A hot-desk device it is logged in to.
    HotdeskSession {
        /// Since when.
        started_at: DateTime<Utc>,
        /// How the session started.
        via: SessionOrigin,
    },
    /// A device of the Location it is signed in to.
    Location {
        /// The Location.
        location_id: Uuid,
        /// Its place in the Location's ring.
        ring: LocationRing,
    },
    /// A hot-desk phone nobody is logged in to, logged out to this placeholder (which rings
    /// its phones).
    LoggedOutPhone,
}

impl From<&DomainTargetSource> for TargetSource {
    fn from(source: &DomainTargetSource) -> Self {
        match source {
            DomainTargetSource::DirectRegistration => Self::DirectRegistration,
            DomainTargetSource::FixedDevice => Self::FixedDevice,
            DomainTargetSource::HotdeskSession { started_at, via } => Self::HotdeskSession {
                started_at: *started_at,
                via: (*via).into(),
            },
            DomainTargetSource::LoggedOutPhone => Self::LoggedOutPhone,
            DomainTargetSource::Location { location_id, ring } => Self::Location {
                location_id: *location_id,
                ring: match ring {
                    DomainLocationRing::Simultaneous => LocationRing::Simultaneous,
                    DomainLocationRing::Sequential { position } => LocationRing::Sequential {
                        position: *position,
                    },
                },
            },
        }
    }
}

/// Which forwarding rule a forward comes from.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ForwardRule {
    /// Forward always.
    Always,
    /// Forward when busy.
    Busy,
    /// Forward when not answered.
    NoAnswer,
    /// Forward when nothing can ring.
    NotRegistered,
}

/// What happens to a call that the ring did not (or could not) take.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Fallback {
    /// Transfer to a destination, dialled in the Extension's context.
    Forward {
        /// Where to.
        destination: String,
        /// The dialplan context to dial it in.
        context: String,
        /// Which rule.
        rule: ForwardRule,
    },
    /// The Extension's voicemail box.
    Voicemail {
        /// The mailbox (the Extension's number).
        mailbox: String,
    },
    /// The caller hears busy.
    Busy,
    /// The call ends as unavailable.
    Unavailable,
}

impl From<DomainFallback> for Fallback {
    fn from(fallback: DomainFallback) -> Self {
        match fallback {
            DomainFallback::Forward {
                destination,
                context,
                rule,
            } => Self::Forward {
                destination,
                context,
                rule: match rule {
                    DomainForwardRule::Always => ForwardRule::Always,
                    DomainForwardRule::Busy => ForwardRule::Busy,
                    DomainForwardRule::NoAnswer => ForwardRule::NoAnswer,
                    DomainForwardRule::NotRegistered => ForwardRule::NotRegistered,
                },
            },
            DomainFallback::Voicemail { mailbox } => Self::Voicemail { mailbox },
            DomainFallback::Busy => Self::Busy,
            DomainFallback::Unavailable => Self::Unavailable,
        }
    }
}

/// What a call to the Extension does.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Disposition {
    /// No such Extension, or it is disabled.
    NotFound,
    /// Do-Not-Disturb: busy, nothing rings.
    Busy,
    /// Forward-always: nothing rings.
    Forward {
        /// Where to.
        destination: String,
        /// The dialplan context to dial it in.
        context: String,
    },
    /// Nothing is bound: straight to the fallback.
    NothingToRing {
        /// What happens instead.
        then: Fallback,
    },
    /// The hunts ring.
    Ring {
        /// Nobody answered within the ring timeout.
        on_no_answer: Fallback,
        /// Every leg was busy.
        on_busy: Fallback,
        /// No leg was registered.
        on_not_registered: Fallback,
    },
}

impl From<DomainDisposition> for Disposition {
    fn from(disposition: DomainDisposition) -> Self {
        match disposition {
            DomainDisposition::NotFound => Self::NotFound,
            DomainDisposition::Busy => Self::Busy,
            DomainDisposition::Forward {
                destination,
                context,
            } => Self::Forward {
                destination,
                context,
            },
            DomainDisposition::NothingToRing { then } => Self::NothingToRing { then: then.into() },
            DomainDisposition::Ring {
                on_no_answer,
                on_busy,
                on_not_registered,
            } => Self::Ring {
                on_no_answer: on_no_answer.into(),
                on_busy: on_busy.into(),
                on_not_registered: on_not_registered.into(),
            },
        }
    }
}

/// How a device came by its identity.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IdentityBinding {
    /// An Extension registered with its own credentials.
    DirectRegistration,
    /// A fixed device, calling as its owner.
    Fixed,
    /// A hot-desk device, calling as the Extension logged in.
    HotdeskSession {
        /// Since when.
        started_at: DateTime<Utc>,
        /// How the session started.
        via: SessionOrigin,
    },
    /// A logged-out hot-desk device in `full` mode: no Extension identity.
    LoggedOutFull,
    /// A logged-out hot-desk device in `placeholder` mode.
    LoggedOutPlaceholder,
    /// A fixed device whose owner is disabled or missing: emergency calls only.
    OwnerUnavailable,
}

impl From<DomainBinding> for IdentityBinding {
    fn from(binding: DomainBinding) -> Self {
        match binding {
            DomainBinding::DirectRegistration => Self::DirectRegistration,
            DomainBinding::Fixed => Self::Fixed,
            DomainBinding::HotdeskSession { started_at, via } => Self::HotdeskSession {
                started_at,
                via: via.into(),
            },
            DomainBinding::LoggedOutFull => Self::LoggedOutFull,
            DomainBinding::LoggedOutPlaceholder => Self::LoggedOutPlaceholder,
            DomainBinding::OwnerUnavailable => Self::OwnerUnavailable,
        }
    }
}

/// One SIP user that rings.
#[derive(Debug, Serialize, ToSchema)]
pub struct RingTargetDto {
    /// The SIP user (a device's user name, or the Extension's number for its own registration).
    #[schema(example = "d7kq2mxr9tbw")]
    pub sip_user: String,
    /// The device, if it is one.
    pub device_id: Option<Uuid>,
    /// The device's label.
    #[schema(example = "Desk 4")]
    pub device_label: Option<String>,
    /// Why it rings: `{"kind": "direct_registration" | "fixed_device" | "hotdesk_session"
    /// (with `started_at`, `via`) | "location" (with `location_id`, `ring`: `{"strategy":
    /// "simultaneous"}` or `{"strategy": "sequential", "position": n}`)}`.
    pub source: TargetSource,
    /// Seconds this leg rings, where the plan limits it (sequential Location steps).
    pub leg_timeout_secs: Option<u32>,
    /// For people.
    #[schema(example = "hot-desk session since 09:02 via *11")]
    pub reason: String,
}

impl From<&RingTarget> for RingTargetDto {
    fn from(t: &RingTarget) -> Self {
        Self {
            sip_user: t.sip_user.clone(),
            device_id: t.device_id,
            device_label: t.device_label.clone(),
            source: TargetSource::from(&t.source),
            leg_timeout_secs: t.leg_timeout_secs,
            reason: t.reason.clone(),
        }
    }
}

/// Targets that ring at the same time.
#[derive(Debug, Serialize, ToSchema)]
pub struct RingStepDto {
    /// The targets.
    pub targets: Vec<RingTargetDto>,
}

/// Steps tried one after another; the hunts of a plan run in parallel.
#[derive(Debug, Serialize, ToSchema)]
pub struct HuntDto {
    /// The steps, in order.
    pub steps: Vec<RingStepDto>,
}

impl From<&Hunt> for HuntDto {
    fn from(h: &Hunt) -> Self {
        Self {
            steps: h
                .steps
                .iter()
                .map(|s| RingStepDto {
                    targets: s.targets.iter().map(RingTargetDto::from).collect(),
                })
                .collect(),
        }
    }
}

/// Who rings when an Extension is dialled, and what happens otherwise.
#[derive(Debug, Serialize, ToSchema)]
pub struct RingPlanDto {
    /// The Extension.
    pub extension_id: Uuid,
    /// Its number.
    #[schema(example = "201")]
    pub number: Option<String>,
    /// Every endpoint bound to it, in parallel hunts (the first is the personal group: own
    /// registration, fixed devices, hot-desk sessions, simultaneous Location devices).
    pub hunts: Vec<HuntDto>,
    /// Seconds before the no-answer outcome.
    #[schema(example = 30)]
    pub ring_timeout_secs: u32,
    /// What the call does: `{"outcome": "ring", "on_no_answer", "on_busy",
    /// "on_not_registered"}` (each `{"action": "voicemail" | "forward" | "busy" |
    /// "unavailable", …}`), `{"outcome": "busy"}` (DND), `{"outcome": "forward", "destination",
    /// "context"}` (forward-always), `{"outcome": "nothing_to_ring", "then"}`, or `{"outcome":
    /// "not_found"}` (disabled).
    pub disposition: Disposition,
    /// The FreeSWITCH dial string the directory gives for it; null when nothing rings.
    #[schema(example = "${sofia_contact(*/d7kq2mxr9tbw@acme.example.net)}")]
    pub dial_string: Option<String>,
}

impl RingPlanDto {
    fn new(extension_id: Uuid, view: RingPlanView) -> Self {
        let RingPlanView { plan, dial_string } = view;
        let RingPlan {
            extension,
            hunts,
            ring_timeout_secs,
            disposition,
        } = plan;
        Self {
            extension_id,
            number: extension.map(|e| e.number),
            hunts: hunts.iter().map(HuntDto::from).collect(),
            ring_timeout_secs,
            disposition: disposition.into(),
            dial_string,
        }
    }
}

/// An Extension named by id and number.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExtensionRefDto {
    /// Id.
    pub id: Uuid,
    /// Number.
    #[schema(example = "201")]
    pub number: String,
}

/// Caller IDs with their fallbacks applied.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallerIdsDto {
    /// Internal caller ID name (default: the display name).
    pub internal_name: String,
    /// Internal caller ID number (default: the number).
    pub internal_number: String,
    /// Outbound caller ID name.
    pub outbound_name: Option<String>,
    /// Outbound caller ID number.
    pub outbound_number: Option<String>,
}

impl From<CallerIds> for CallerIdsDto {
    fn from(c: CallerIds) -> Self {
        Self {
            internal_name: c.internal_name,
            internal_number: c.internal_number,
            outbound_name: c.outbound_name,
            outbound_number: c.outbound_number,
        }
    }
}

/// The emergency caller ID, each part from the first level that has it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmergencyCallerIdDto {
    /// Name.
    pub name: Option<String>,
    /// Number (E.164).
    #[schema(example = "+4930123456")]
    pub number: Option<String>,
    /// Where the name came from: `device`, `location`, `extension` or `domain`.
    #[schema(example = "location")]
    pub name_from: Option<String>,
    /// Where the number came from: `device`, `location`, `extension` or `domain`.
    #[schema(example = "location")]
    pub number_from: Option<String>,
}

impl From<EmergencyCallerId> for EmergencyCallerIdDto {
    fn from(e: EmergencyCallerId) -> Self {
        let name_of = |s| {
            serde_json::to_value(s)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
        };
        Self {
            name: e.name,
            number: e.number,
            name_from: e.name_from.and_then(name_of),
            number_from: e.number_from.and_then(name_of),
        }
    }
}

/// Which identity a Device calls with.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallingIdentityDto {
    /// The Device.
    pub device_id: Option<Uuid>,
    /// How the identity was found: `{"kind": "fixed" | "hotdesk_session" (with `started_at`,
    /// `via`) | "logged_out_full" | "logged_out_placeholder" | "owner_unavailable"}`.
    pub binding: IdentityBinding,
    /// The Extension it calls as, if any.
    pub effective_extension: Option<ExtensionRefDto>,
    /// Caller IDs, if it calls as an Extension.
    pub caller_id: Option<CallerIdsDto>,
    /// Dialplan context.
    #[schema(example = "acme.example.net")]
    pub context: String,
    /// True in the restricted logged-out context (login codes and emergency numbers only).
    pub restricted: bool,
    /// Toll-allow classes, comma-separated (empty when restricted).
    #[schema(example = "local,domestic")]
    pub toll_allow: String,
    /// Account code.
    pub account_code: Option<String>,
    /// Call group.
    pub call_group: Option<String>,
    /// Recording of inbound calls: `always`, `never`, `on_demand`.
    #[schema(value_type = crate::dto::RecordingMode)]
    pub record_inbound: String,
    /// Recording of outbound calls.
    #[schema(value_type = crate::dto::RecordingMode)]
    pub record_outbound: String,
    /// `<number>@<sip domain>` of the effective Extension.
    pub presence_id: Option<String>,
    /// The mailbox whose message-waiting lamp the phone shows.
    pub mailbox: Option<String>,
    /// Emergency caller ID with the level each part came from.
    pub emergency_caller_id: EmergencyCallerIdDto,
    /// For people.
    #[schema(example = "hot-desk session of 201 Alice since 2025-03-28 09:02 via *11")]
    pub reason: String,
}

impl From<CallingIdentity> for CallingIdentityDto {
    fn from(i: CallingIdentity) -> Self {
        Self {
            device_id: i.device_id,
            binding: i.binding.into(),
            effective_extension: i.effective_extension.map(|e| ExtensionRefDto {
                id: e.id,
                number: e.number,
            }),
            caller_id: i.caller_id.map(CallerIdsDto::from),
            context: i.context,
            restricted: i.restricted,
            toll_allow: i.toll_allow,
            account_code: i.account_code,
            call_group: i.call_group,
            record_inbound: i.record_inbound.as_str().to_owned(),
            record_outbound: i.record_outbound.as_str().to_owned(),
            presence_id: i.presence_id,
            mailbox: i.mailbox,
            emergency_caller_id: i.emergency_caller_id.into(),
            reason: i.reason,
        }
    }
}

/// Who rings when this Extension is dialled (`extensions.read`): its own registration, fixed
/// devices, hot-desk sessions and signed-in Location, with a reason per target, the ring
/// timeout, the outcome when nothing answers, and the FreeSWITCH dial string.
#[utoipa::path(
    tag = "extensions",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Extension id")),
    responses(
        (status = 200, description = "The ring plan", body = RingPlanDto),
        (status = 403, description = "`extensions.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Extension in a Domain of mine", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/extensions/{id}/ring-plan")]
pub async fn extension_ring_plan(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<RingPlanDto>> {
    let (domain_id, id) = path.into_inner();
    let view = views::extension_ring_plan(&state.db, caller.ctx(), domain_id, id).await?;
    Ok(web::Json(RingPlanDto::new(id, view)))
}

/// Which identity this Device calls with (`devices.read`): the owning or logged-in Extension's
/// caller IDs, context, toll allow and account code; the restricted context of a logged-out
/// `full` phone or the placeholder's identity; the emergency caller ID from the Device, its
/// Location, the Extension or the Domain, with the level it came from.
#[utoipa::path(
    tag = "devices",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Device id")),
    responses(
        (status = 200, description = "The calling identity", body = CallingIdentityDto),
        (status = 403, description = "`devices.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Device in a Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The Device is disabled (`device_disabled`)", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/devices/{id}/identity")]
pub async fn device_identity(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<CallingIdentityDto>> {
    let (domain_id, id) = path.into_inner();
    let identity = views::device_identity(&state.db, caller.ctx(), domain_id, id).await?;
    Ok(web::Json(identity.into()))
}
