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
}

/// One step of the explanation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExplainStepDto {
    /// `caller`, `context`, `emergency`, `extension`, `ring`, `route`, `number`,
    /// `toll_class`, `gateways`, `caller_id`, `number_destination`, `result`.
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
    #[schema(value_type = Option<Object>)]
    pub caller: Option<serde_json::Value>,
    /// Every step.
    pub steps: Vec<ExplainStepDto>,
    /// The end: `action` (`ring`, `outbound`, `refused`, `hang_up`, `voicemail`, `forward`,
    /// `transfer`, `not_ours`), `cause`, `number`, `gateways`, `caller_id_name`,
    /// `caller_id_number`.
    #[schema(value_type = Object)]
    pub outcome: serde_json::Value,
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
    match state.directory.explain(domain_id, &who, digits).await {
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
