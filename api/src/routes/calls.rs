//! "Explain a call" (`routing.read`): every step a call would take, from the same compiled
//! plan that answers FreeSWITCH, with the document FreeSWITCH would get.

use actix_web::{post, web};
use serde::{Deserialize, Serialize};
use switchboard_domain::identity::permissions::Permission;
use switchboard_domain::services::scope;
use switchboard_esl_bridge::explain::{ExplainCaller, ExplainError, Explanation};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::Json;
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;
use switchboard_domain::DomainError;

const PROBLEM: &str = "application/problem+json";

/// The call to explain: exactly one of `device_id`, `extension_id` (a phone of the Domain
/// dialling) or `gateway_id` (a carrier calling a Number), and the digits.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainInput {
    /// A Device of the Domain places the call (as whoever it calls as now).
    pub device_id: Option<Uuid>,
    /// An Extension registered directly places the call.
    pub extension_id: Option<Uuid>,
    /// A carrier calls through this gateway (own or granted); `digits` is the Number called.
    pub gateway_id: Option<Uuid>,
    /// What is dialled (or the Number called).
    #[schema(example = "030123456")]
    pub digits: String,
    /// When the call arrives, for time conditions (RFC 3339); default: now.
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    /// The keys the caller presses at each IVR menu met, in order (`""`: nothing); a menu met
    /// after the last entry: nothing pressed. At most 10.
    #[serde(default)]
    #[schema(example = json!(["1"]))]
    pub keys: Vec<String>,
}

// The shapes below document JSON the domain types serialize (`CallerFacts`, the outcome, an
// emergency call): they are never built here, only described, so the document types every field.

/// An Extension, by id and number.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct ExtensionRefDoc {
    /// Id.
    pub id: Uuid,
    /// Number.
    #[schema(example = "201")]
    pub number: String,
}

/// The emergency caller ID of the place, each part from the first level that has it.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct EmergencyCallerIdDoc {
    /// Name.
    pub name: Option<String>,
    /// Number (E.164).
    pub number: Option<String>,
    /// `device`, `location`, `extension` or `domain`.
    pub name_from: Option<String>,
    /// `device`, `location`, `extension` or `domain`.
    pub number_from: Option<String>,
}

/// A Location, as an emergency call names it.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct LocationRefDoc {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Street address for emergency services.
    pub emergency_address: Option<String>,
}

/// A caller as the compiled plan knows it.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct CallerDoc {
    /// The Device, for a phone.
    pub device_id: Option<Uuid>,
    /// Its label.
    pub device_label: Option<String>,
    /// The Extension it calls as (the person's, when hot-desking).
    pub extension: Option<ExtensionRefDoc>,
    /// Toll classes it may reach.
    pub toll_allow: Vec<String>,
    /// Its outbound caller ID name.
    pub outbound_name: Option<String>,
    /// Its outbound caller ID number.
    pub outbound_number: Option<String>,
    /// A logged-out phone (emergency numbers and login codes only).
    pub restricted: bool,
    /// Recording of the calls it places (its Extension's `recording.outbound`).
    pub record_outbound: crate::dto::RecordingMode,
    /// The emergency caller ID of the place.
    pub emergency: EmergencyCallerIdDoc,
    /// The Device's Location.
    pub location: Option<LocationRefDoc>,
    /// How the identity was found.
    pub reason: String,
}

/// A gateway a call is sent to.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct GatewayRefDoc {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Its name in FreeSWITCH.
    pub freeswitch_name: String,
}

/// What the call does in the end.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct ExplainOutcomeDoc {
    /// `ring`, `outbound`, `refused`, `hang_up`, `voicemail`, `forward`, `transfer`, `not_ours`.
    #[schema(example = "outbound")]
    pub action: String,
    /// The hang-up cause, if it ends.
    pub cause: Option<String>,
    /// The number sent (outbound), forwarded to, or the Extension rung.
    pub number: Option<String>,
    /// Gateways tried, in order.
    pub gateways: Vec<GatewayRefDoc>,
    /// The caller ID name sent.
    pub caller_id_name: Option<String>,
    /// The caller ID number sent.
    pub caller_id_number: Option<String>,
    /// What rings in the end, in order: a ring group's members (`Extension 201`, an external
    /// number), or the one Extension.
    pub ringing: Vec<String>,
}

/// An emergency call (`detail` of a `call.emergency` event).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct EmergencyCallDoc {
    /// The number dialled.
    #[schema(example = "112")]
    pub dialled: String,
    /// The caller ID name sent with it.
    pub caller_id_name: Option<String>,
    /// The caller ID number sent with it (the place's).
    pub caller_id_number: Option<String>,
    /// Who and which phone, with the Location and its emergency address.
    pub caller: Option<CallerDoc>,
    /// The route it leaves through (null: none reaches it; FreeSWITCH's static dialplan).
    pub route: Option<String>,
    /// FreeSWITCH's channel id.
    pub channel: Option<String>,
}

/// Whether the call is recorded, and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordingDecisionDto {
    /// `always` (from the answer to the end), `on_demand` (either side presses `*2` to start
    /// and `*2` again to stop) or `never`: the stronger of the caller's `recording.outbound`
    /// and the called Extension's `recording.inbound`.
    pub policy: crate::dto::RecordingMode,
    /// Why, in words.
    #[schema(example = "Extension 201 (calling) records the calls it places: always")]
    pub reason: String,
}

/// One step of the explanation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExplainStepDto {
    /// `caller`, `context`, `emergency`, `extension`, `ring`, `route`, `number`,
    /// `toll_class`, `gateways`, `caller_id`, `number_destination`, `flow`,
    /// `time_condition`, `ivr`, `ivr_keys`, `ring_group`, `unanswered`, `voicemail`,
    /// `result`, `recording`.
    #[schema(example = "route")]
    pub step: String,
    /// In words.
    pub detail: String,
}

/// What a call would do.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExplanationDto {
    /// The dialplan context FreeSWITCH looks the number up in.
    pub context: String,
    /// What was dialled.
    pub dialled: String,
    /// The caller as the plan knows it: device, Extension, toll classes, caller IDs, emergency
    /// caller ID of the place, Location (null for a carrier).
    #[schema(value_type = Option<CallerDoc>)]
    pub caller: Option<serde_json::Value>,
    /// Every step.
    pub steps: Vec<ExplainStepDto>,
    /// The end: `action` (`ring`, `outbound`, `refused`, `hang_up`, `voicemail`, `forward`,
    /// `transfer`, `not_ours`), `cause`, `number`, `gateways`, `caller_id_name`,
    /// `caller_id_number`, `ringing` (what rings: a ring group's members, or the Extension).
    #[schema(value_type = ExplainOutcomeDoc)]
    pub outcome: serde_json::Value,
    /// Whether the call is recorded, and why.
    pub recording: RecordingDecisionDto,
    /// The document FreeSWITCH gets for this lookup (the same answer, from the same plan).
    pub freeswitch_xml: String,
}

impl From<Explanation> for ExplanationDto {
    fn from(e: Explanation) -> Self {
        Self {
            context: e.context,
            dialled: e.dialled,
            caller: e.caller.and_then(|c| serde_json::to_value(c).ok()),
            steps: e
                .steps
                .into_iter()
                .map(|s| ExplainStepDto {
                    step: s.step.to_owned(),
                    detail: s.detail,
                })
                .collect(),
            outcome: serde_json::to_value(e.outcome).unwrap_or_default(),
            recording: RecordingDecisionDto {
                policy: e.recording.policy.into(),
                reason: e.recording.reason,
            },
            freeswitch_xml: e.freeswitch_xml,
        }
    }
}

/// Explain a call (`routing.read`): context, matched rule, normalised number, toll decision,
/// route and gateways, caller ID and why, or the Extension's ring plan and outcomes.
#[utoipa::path(
    tag = "calls",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id")),
    request_body = ExplainInput,
    responses(
        (status = 200, description = "The explanation", body = ExplanationDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`routing.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Not exactly one caller, an unknown caller (`device_id`, `extension_id`, `gateway_id`), or no digits", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/api/v1/domains/{domain_id}/calls/explain")]
pub async fn explain_call(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<ExplainInput>,
) -> ApiResult<web::Json<ExplanationDto>> {
    let domain_id = path.into_inner();
    scope::enter(&state.db, caller.ctx(), domain_id, Permission::RoutingRead).await?;
    let i = body.into_inner();
    let digits = i.digits.trim();
    if digits.is_empty()
        || digits.len() > 32
        || !digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'*' | b'#'))
    {
        return Err(
            DomainError::invalid("digits", "invalid_digits", "1 to 32 of 0-9 + * #").into(),
        );
    }
    let (who, field) = match (i.device_id, i.extension_id, i.gateway_id) {
        (Some(d), None, None) => (ExplainCaller::Device(d), "device_id"),
        (None, Some(e), None) => (ExplainCaller::Extension(e), "extension_id"),
        (None, None, Some(g)) => (ExplainCaller::Gateway(g), "gateway_id"),
        _ => {
            return Err(DomainError::invalid(
                "device_id",
                "one_caller",
                "give exactly one of device_id, extension_id, gateway_id",
            )
            .into());
        }
    };
    if let ExplainCaller::Gateway(g) = who {
        // Only a gateway the Domain may use (its own, or granted).
        let usable =
            switchboard_domain::services::gateways::usable_by(&state.db, domain_id).await?;
        if !usable.iter().any(|u| u.id == g) {
            return Err(DomainError::invalid(
                field,
                "unknown_caller",
                "no such gateway available to this Domain",
            )
            .into());
        }
    }
    if i.keys.len() > 10 {
        return Err(DomainError::invalid("keys", "too_many", "at most 10 menus").into());
    }
    for (n, k) in i.keys.iter().enumerate() {
        if !k.is_empty() && !switchboard_domain::routing::flows::valid_keys(k) {
            return Err(DomainError::invalid(
                format!("keys[{n}]"),
                "invalid_digits",
                "empty, or 1 to 3 of 0-9 * #",
            )
            .into());
        }
    }
    let options = switchboard_esl_bridge::explain::ExplainOptions {
        at: i.at,
        keys: i.keys,
    };
    match state
        .directory
        .explain(domain_id, &who, digits, &options)
        .await
    {
        Ok(e) => Ok(web::Json(e.into())),
        Err(ExplainError::Domain) => Err(DomainError::NotFound("domain").into()),
        Err(ExplainError::Caller) => {
            Err(
                DomainError::invalid(field, "unknown_caller", "no such caller in this Domain")
                    .into(),
            )
        }
    }
}
