//! Call flows of a Domain: ring groups, IVR menus and time conditions (`call_flows.read` /
//! `call_flows.write`; a time condition's override with `call_flows.override`).
//!
//! Bodies are JSON objects: a create gives `name`, `number` (optional) and the kind's fields; a
//! change is a JSON merge patch of the same object (fields left out stay, `null` resets one
//! to its default). Every destination inside is the same tagged object as a Number's.

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_domain::routing::flows::{FlowKind, OverrideMode};
use switchboard_domain::services::call_flows::{self, FlowView};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::Json;
use crate::problem::{ApiResult, Problem};
use crate::routes::numbers::DestinationDto;
use crate::state::AppState;

const PROBLEM: &str = "application/problem+json";

/// How a ring group rings its members.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum RingStrategyDto {
    /// Every member at once.
    Simultaneous,
    /// One after the other, in list order, each for its ring time.
    Sequential,
    /// One after the other, starting with the member after the one that rang first on the
    /// last call.
    RoundRobin,
    /// One after the other, the member idle the longest first (members in a call last).
    LongestIdle,
}

/// A member: exactly one of `extension_id` (rings where the person is: their phones, a
/// hot-desk login, a Location they signed in to) or `number` (through the Outbound Routes).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct RingGroupMemberDto {
    /// An Extension of the Domain.
    pub extension_id: Option<Uuid>,
    /// An external number (`+` and digits, or what a phone would dial).
    #[schema(example = "+4930987654")]
    pub number: Option<String>,
    /// Seconds it rings (5–300, default 20).
    #[schema(example = 20)]
    pub ring_secs: Option<u32>,
}

/// A ring group.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct RingGroupDto {
    /// Id.
    pub id: Uuid,
    /// The Domain.
    pub domain_id: Uuid,
    /// Name, unique among the Domain's ring groups.
    #[schema(example = "Sales")]
    pub name: String,
    /// The internal number that dials it (unique in the Domain, never an Extension's).
    #[schema(example = "600")]
    pub number: Option<String>,
    /// How members ring.
    pub strategy: RingStrategyDto,
    /// Seconds the group rings in all before `when_unanswered`.
    pub ring_secs: u32,
    /// The members, in order.
    pub members: Vec<RingGroupMemberDto>,
    /// Whether members in a call are skipped.
    pub skip_busy: bool,
    /// Put before the caller's name on the members' phones.
    #[schema(example = "Sales: ")]
    pub caller_id_prefix: String,
    /// Where the call goes when nobody answers.
    pub when_unanswered: DestinationDto,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A ring group to create, or a merge patch of one (fields left out stay; `null` resets).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"name": "Sales", "number": "600", "strategy": "sequential", "members": [{"extension_id": "0193a5b2-7c1e-7d3f-9a51-2b8c4d6e8f10", "ring_secs": 15}], "when_unanswered": {"type": "hang_up", "cause": "busy"}}))]
#[allow(dead_code)]
pub struct RingGroupInput {
    /// 1–100 characters (required on create).
    pub name: Option<String>,
    /// 1–10 digits; null: none.
    pub number: Option<String>,
    /// Default `simultaneous`.
    pub strategy: Option<RingStrategyDto>,
    /// 5–600, default 60.
    pub ring_secs: Option<u32>,
    /// Up to 50, each an Extension or a number once.
    pub members: Option<Vec<RingGroupMemberDto>>,
    /// Default true.
    pub skip_busy: Option<bool>,
    /// Up to 30 characters.
    pub caller_id_prefix: Option<String>,
    /// Default: hang up, unallocated.
    pub when_unanswered: Option<DestinationDto>,
}

/// A built-in greeting: `beep` (a tone), `welcome`, `make_a_choice`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(dead_code)]
pub enum GreetingDto {
    /// A prompt shipped with switchboard.
    Builtin {
        /// `beep`, `welcome` or `make_a_choice`.
        #[schema(example = "welcome")]
        prompt: String,
    },
}

/// A key of a menu.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct IvrOptionDto {
    /// 1–3 of `0-9 * #`; no option's keys may begin another's.
    #[schema(example = "1")]
    pub digits: String,
    /// Where the caller goes.
    pub destination: DestinationDto,
}

/// An IVR menu.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct IvrMenuDto {
    /// Id.
    pub id: Uuid,
    /// The Domain.
    pub domain_id: Uuid,
    /// Name, unique among the Domain's menus.
    #[schema(example = "Main menu")]
    pub name: String,
    /// The internal number that dials it.
    pub number: Option<String>,
    /// What is played.
    pub greeting: GreetingDto,
    /// The keys.
    pub options: Vec<IvrOptionDto>,
    /// Whether callers may dial the Domain's Extensions directly.
    pub direct_dial: bool,
    /// Seconds to wait for a key after the greeting.
    pub timeout_secs: u32,
    /// Times the greeting is played when nothing (or nothing valid) is pressed.
    pub max_tries: u32,
    /// Where the caller goes after the last try.
    pub when_no_choice: DestinationDto,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// An IVR menu to create, or a merge patch of one.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"name": "Main menu", "greeting": {"type": "builtin", "prompt": "welcome"}, "options": [{"digits": "1", "destination": {"type": "ring_group", "ring_group_id": "0193a5b2-7c1e-7d3f-9a51-2b8c4d6e8f10"}}], "direct_dial": true, "when_no_choice": {"type": "hang_up", "cause": "normal"}}))]
#[allow(dead_code)]
pub struct IvrMenuInput {
    /// 1–100 characters (required on create).
    pub name: Option<String>,
    /// 1–10 digits; null: none.
    pub number: Option<String>,
    /// Default: `beep`.
    pub greeting: Option<GreetingDto>,
    /// Up to 20.
    pub options: Option<Vec<IvrOptionDto>>,
    /// Default false.
    pub direct_dial: Option<bool>,
    /// 1–60, default 5.
    pub timeout_secs: Option<u32>,
    /// 1–10, default 3.
    pub max_tries: Option<u32>,
    /// Default: hang up, unallocated.
    pub when_no_choice: Option<DestinationDto>,
}

/// A span of a day.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct SpanDto {
    /// `HH:MM`.
    #[schema(example = "09:00")]
    pub from: String,
    /// `HH:MM`, after `from`; `24:00` is the end of the day.
    #[schema(example = "17:00")]
    pub to: String,
}

/// Weekly hours.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct WeeklyHoursDto {
    /// `mon` … `sun`.
    #[schema(example = json!(["mon", "tue", "wed", "thu", "fri"]))]
    pub days: Vec<String>,
    /// `HH:MM`.
    #[schema(example = "09:00")]
    pub from: String,
    /// `HH:MM` or `24:00`.
    #[schema(example = "17:00")]
    pub to: String,
}

/// A holiday or a one-off date: it replaces the weekly hours on its date.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct SpecialDayDto {
    /// What it is.
    #[schema(example = "Christmas")]
    pub name: Option<String>,
    /// `YYYY-MM-DD`.
    #[schema(example = "2026-12-25")]
    pub date: String,
    /// Every year on that month and day.
    pub every_year: Option<bool>,
    /// When it is open that day; none: closed all day.
    pub hours: Option<Vec<SpanDto>>,
}

/// A time condition's manual override.
#[derive(Debug, Serialize, Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum OverrideDto {
    /// Follow the schedule.
    Auto,
    /// Open whatever the schedule says.
    Open,
    /// Closed whatever the schedule says.
    Closed,
}

/// A time condition.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct TimeConditionDto {
    /// Id.
    pub id: Uuid,
    /// The Domain.
    pub domain_id: Uuid,
    /// Name, unique among the Domain's time conditions.
    #[schema(example = "Office hours")]
    pub name: String,
    /// The internal number that dials it.
    pub number: Option<String>,
    /// An IANA time zone; absent: the Domain's.
    pub time_zone: Option<String>,
    /// When it is open in an ordinary week.
    pub weekly: Vec<WeeklyHoursDto>,
    /// Holidays and one-off dates.
    pub special_days: Vec<SpecialDayDto>,
    /// The digits after `*36` that switch the override from a phone (its BLF lamp is lit
    /// while an override is on).
    #[schema(example = "1")]
    pub override_code: Option<String>,
    /// The override now.
    #[serde(rename = "override")]
    pub override_mode: OverrideDto,
    /// Where calls go while open.
    pub when_open: DestinationDto,
    /// Where calls go while closed.
    pub when_closed: DestinationDto,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A time condition to create, or a merge patch of one (the override has its own endpoint).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"name": "Office hours", "weekly": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}], "special_days": [{"name": "Christmas", "date": "2026-12-25", "every_year": true}], "override_code": "1", "when_open": {"type": "ivr", "ivr_id": "0193a5b2-7c1e-7d3f-9a51-2b8c4d6e8f10"}, "when_closed": {"type": "voicemail", "extension_id": "0193a5b2-7c1e-7d3f-9a51-2b8c4d6e8f11"}}))]
#[allow(dead_code)]
pub struct TimeConditionInput {
    /// 1–100 characters (required on create).
    pub name: Option<String>,
    /// 1–10 digits; null: none.
    pub number: Option<String>,
    /// An IANA time zone; null: the Domain's.
    pub time_zone: Option<String>,
    /// Up to 100.
    pub weekly: Option<Vec<WeeklyHoursDto>>,
    /// Up to 100.
    pub special_days: Option<Vec<SpecialDayDto>>,
    /// 1–3 digits, unique in the Domain; null: none.
    pub override_code: Option<String>,
    /// Default: hang up, unallocated.
    pub when_open: Option<DestinationDto>,
    /// Default: hang up, unallocated.
    pub when_closed: Option<DestinationDto>,
}

/// A time condition's new override.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideInput {
    /// `auto` (follow the schedule), `open` or `closed`.
    #[serde(rename = "override")]
    pub override_mode: OverrideDto,
}

/// A list of call flows of one kind, by name.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct RingGroupList {
    /// The ring groups.
    pub items: Vec<RingGroupDto>,
}

/// A list of IVR menus, by name.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct IvrMenuList {
    /// The menus.
    pub items: Vec<IvrMenuDto>,
}

/// A list of time conditions, by name.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct TimeConditionList {
    /// The time conditions.
    pub items: Vec<TimeConditionDto>,
}

const fn segment(kind: FlowKind) -> &'static str {
    match kind {
        FlowKind::RingGroup => "ring-groups",
        FlowKind::Ivr => "ivr-menus",
        FlowKind::TimeCondition => "time-conditions",
    }
}

fn created(domain_id: Uuid, v: &FlowView) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/domains/{domain_id}/{}/{}", segment(v.kind), v.id),
        ))
        .json(v.to_json())
}

async fn create(
    state: &AppState,
    caller: &Caller,
    domain_id: Uuid,
    kind: FlowKind,
    body: serde_json::Value,
) -> ApiResult<HttpResponse> {
    let v = call_flows::create(
        &state.db,
        &state.events,
        caller.ctx(),
        domain_id,
        kind,
        body,
    )
    .await?;
    Ok(created(domain_id, &v))
}

async fn list(
    state: &AppState,
    caller: &Caller,
    domain_id: Uuid,
    kind: FlowKind,
) -> ApiResult<HttpResponse> {
    let items: Vec<serde_json::Value> = call_flows::list(&state.db, caller.ctx(), domain_id, kind)
        .await?
        .iter()
        .map(FlowView::to_json)
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

async fn get_one(
    state: &AppState,
    caller: &Caller,
    (domain_id, id): (Uuid, Uuid),
    kind: FlowKind,
) -> ApiResult<HttpResponse> {
    let v = call_flows::get(&state.db, caller.ctx(), domain_id, kind, id).await?;
    Ok(HttpResponse::Ok().json(v.to_json()))
}

async fn update(
    state: &AppState,
    caller: &Caller,
    (domain_id, id): (Uuid, Uuid),
    kind: FlowKind,
    body: serde_json::Value,
) -> ApiResult<HttpResponse> {
    let v = call_flows::update(
        &state.db,
        &state.events,
        caller.ctx(),
        domain_id,
        kind,
        id,
        body,
    )
    .await?;
    Ok(HttpResponse::Ok().json(v.to_json()))
}

async fn remove(
    state: &AppState,
    caller: &Caller,
    (domain_id, id): (Uuid, Uuid),
    kind: FlowKind,
) -> ApiResult<HttpResponse> {
    call_flows::delete(&state.db, &state.events, caller.ctx(), domain_id, kind, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

macro_rules! flow_routes {
    (
        $kind:expr, $tag:literal, $path:literal, $item_path:literal, $one:literal,
        $dto:ty, $input:ty, $list_dto:ty,
        $create:ident, $list:ident, $get:ident, $update:ident, $delete:ident
    ) => {
        #[doc = concat!("Create a ", $one, " (`call_flows.write`).")]
        #[utoipa::path(
            tag = $tag,
            security(("bearer" = [])),
            params(("domain_id" = Uuid, Path, description = "Domain id")),
            request_body = $input,
            responses(
                (status = 201, description = "Created", body = $dto),
                (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
                (status = 403, description = "`call_flows.write` missing", body = Problem, content_type = PROBLEM),
                (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
                (status = 409, description = "The name, number or override code is taken (`already_exists`, the field named), or the destinations would make a loop no caller's key press leaves (`loop`, the flows named)", body = Problem, content_type = PROBLEM),
                (status = 422, description = "Invalid fields, named by path (e.g. `members[1].ring_secs`, `options[0].destination.ivr_id`): a destination in another Domain is the same `not_found` as a missing one", body = Problem, content_type = PROBLEM),
            )
        )]
        #[post($path)]
        pub async fn $create(
            state: web::Data<AppState>,
            caller: Caller,
            path: web::Path<Uuid>,
            body: Json<serde_json::Value>,
        ) -> ApiResult<HttpResponse> {
            create(&state, &caller, path.into_inner(), $kind, body.into_inner()).await
        }

        #[doc = concat!("List the Domain's ", $one, "s by name (`call_flows.read`).")]
        #[utoipa::path(
            tag = $tag,
            security(("bearer" = [])),
            params(("domain_id" = Uuid, Path, description = "Domain id")),
            responses(
                (status = 200, description = "The list", body = $list_dto),
                (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
                (status = 403, description = "`call_flows.read` missing", body = Problem, content_type = PROBLEM),
                (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
            )
        )]
        #[get($path)]
        pub async fn $list(
            state: web::Data<AppState>,
            caller: Caller,
            path: web::Path<Uuid>,
        ) -> ApiResult<HttpResponse> {
            list(&state, &caller, path.into_inner(), $kind).await
        }

        #[doc = concat!("Read a ", $one, " (`call_flows.read`).")]
        #[utoipa::path(
            tag = $tag,
            security(("bearer" = [])),
            params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Id")),
            responses(
                (status = 200, description = "Found", body = $dto),
                (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
                (status = 403, description = "`call_flows.read` missing", body = Problem, content_type = PROBLEM),
                (status = 404, description = "None such in a Domain of mine", body = Problem, content_type = PROBLEM),
            )
        )]
        #[get($item_path)]
        pub async fn $get(
            state: web::Data<AppState>,
            caller: Caller,
            path: web::Path<(Uuid, Uuid)>,
        ) -> ApiResult<HttpResponse> {
            get_one(&state, &caller, path.into_inner(), $kind).await
        }

        #[doc = concat!("Change a ", $one, " with a JSON merge patch (`call_flows.write`): fields left out stay, `null` resets one.")]
        #[utoipa::path(
            tag = $tag,
            security(("bearer" = [])),
            params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Id")),
            request_body = $input,
            responses(
                (status = 200, description = "Changed", body = $dto),
                (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
                (status = 403, description = "`call_flows.write` missing", body = Problem, content_type = PROBLEM),
                (status = 404, description = "None such in a Domain of mine", body = Problem, content_type = PROBLEM),
                (status = 409, description = "Taken (`already_exists`), or a loop (`loop`)", body = Problem, content_type = PROBLEM),
                (status = 422, description = "Invalid fields, named by path", body = Problem, content_type = PROBLEM),
            )
        )]
        #[patch($item_path)]
        pub async fn $update(
            state: web::Data<AppState>,
            caller: Caller,
            path: web::Path<(Uuid, Uuid)>,
            body: Json<serde_json::Value>,
        ) -> ApiResult<HttpResponse> {
            update(&state, &caller, path.into_inner(), $kind, body.into_inner()).await
        }

        #[doc = concat!("Delete a ", $one, " (`call_flows.write`); one still used by a Number or another call flow is a 409 naming them.")]
        #[utoipa::path(
            tag = $tag,
            security(("bearer" = [])),
            params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Id")),
            responses(
                (status = 204, description = "Deleted"),
                (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
                (status = 403, description = "`call_flows.write` missing", body = Problem, content_type = PROBLEM),
                (status = 404, description = "None such in a Domain of mine", body = Problem, content_type = PROBLEM),
                (status = 409, description = "In use (`in_use`): the message names the Numbers and call flows pointing at it", body = Problem, content_type = PROBLEM),
            )
        )]
        #[delete($item_path)]
        pub async fn $delete(
            state: web::Data<AppState>,
            caller: Caller,
            path: web::Path<(Uuid, Uuid)>,
        ) -> ApiResult<HttpResponse> {
            remove(&state, &caller, path.into_inner(), $kind).await
        }
    };
}

flow_routes!(
    FlowKind::RingGroup,
    "call-flows",
    "/api/v1/domains/{domain_id}/ring-groups",
    "/api/v1/domains/{domain_id}/ring-groups/{id}",
    "ring group",
    RingGroupDto,
    RingGroupInput,
    RingGroupList,
    create_ring_group,
    list_ring_groups,
    get_ring_group,
    update_ring_group,
    delete_ring_group
);

flow_routes!(
    FlowKind::Ivr,
    "call-flows",
    "/api/v1/domains/{domain_id}/ivr-menus",
    "/api/v1/domains/{domain_id}/ivr-menus/{id}",
    "IVR menu",
    IvrMenuDto,
    IvrMenuInput,
    IvrMenuList,
    create_ivr_menu,
    list_ivr_menus,
    get_ivr_menu,
    update_ivr_menu,
    delete_ivr_menu
);

flow_routes!(
    FlowKind::TimeCondition,
    "call-flows",
    "/api/v1/domains/{domain_id}/time-conditions",
    "/api/v1/domains/{domain_id}/time-conditions/{id}",
    "time condition",
    TimeConditionDto,
    TimeConditionInput,
    TimeConditionList,
    create_time_condition,
    list_time_conditions,
    get_time_condition,
    update_time_condition,
    delete_time_condition
);

/// Switch a time condition's override (`call_flows.override`): `open` or `closed` whatever
/// the schedule says, or `auto` to follow it again. Phones do the same with `*36` and the
/// condition's `override_code`.
#[utoipa::path(
    tag = "call-flows",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Time condition id")),
    request_body = OverrideInput,
    responses(
        (status = 200, description = "Switched", body = TimeConditionDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`call_flows.override` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such time condition in a Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Not one of `auto`, `open`, `closed`", body = Problem, content_type = PROBLEM),
    )
)]
#[put("/api/v1/domains/{domain_id}/time-conditions/{id}/override")]
pub async fn set_time_condition_override(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<OverrideInput>,
) -> ApiResult<HttpResponse> {
    let (domain_id, id) = path.into_inner();
    let mode = match body.into_inner().override_mode {
        OverrideDto::Auto => OverrideMode::Auto,
        OverrideDto::Open => OverrideMode::Open,
        OverrideDto::Closed => OverrideMode::Closed,
    };
    let v = call_flows::set_override(&state.db, &state.events, caller.ctx(), domain_id, id, mode)
        .await?;
    Ok(HttpResponse::Ok().json(v.to_json()))
}

/// What to do with a row whose kind and name match a flow of the Domain.
#[derive(Debug, Deserialize, ToSchema, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnExistingFlow {
    /// Refuse the import (`already_exists` on the row's `name`).
    #[default]
    Fail,
    /// Replace its settings (its id and override stay).
    Update,
}

/// Call flows to import at once, all or nothing. Each row is the object a create takes, plus
/// an optional `id` (a UUID of the file's choosing) so rows can point at each other.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"ring_groups": [{"id": "0193a5b2-7c1e-7d3f-9a51-2b8c4d6e8f12", "name": "Sales", "number": "600", "members": [{"extension_id": "0193a5b2-7c1e-7d3f-9a51-2b8c4d6e8f10"}]}], "ivr_menus": [{"name": "Main", "options": [{"digits": "1", "destination": {"type": "ring_group", "ring_group_id": "0193a5b2-7c1e-7d3f-9a51-2b8c4d6e8f12"}}]}], "dry_run": true}))]
pub struct CallFlowImport {
    /// Ring groups.
    #[serde(default)]
    #[schema(value_type = Vec<RingGroupInput>)]
    pub ring_groups: Vec<serde_json::Value>,
    /// IVR menus.
    #[serde(default)]
    #[schema(value_type = Vec<IvrMenuInput>)]
    pub ivr_menus: Vec<serde_json::Value>,
    /// Time conditions.
    #[serde(default)]
    #[schema(value_type = Vec<TimeConditionInput>)]
    pub time_conditions: Vec<serde_json::Value>,
    /// A row matching an existing flow (kind and name): `fail` (default) or `update`.
    #[serde(default)]
    pub on_existing: OnExistingFlow,
    /// Check everything, write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// What an import did, or would do.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallFlowImportReport {
    /// Flows created.
    pub created: usize,
    /// Flows changed.
    pub updated: usize,
    /// Nothing was written.
    pub dry_run: bool,
}

/// Import ring groups, IVR menus and time conditions at once (`call_flows.write`): every row
/// checked by the rules of a single save against the Domain as it will be (rows may point at
/// each other by the ids they give themselves), the whole graph checked for loops, then all
/// written in one transaction, audited and published, or nothing. A dry run answers the same
/// report and writes nothing.
#[utoipa::path(
    tag = "call-flows",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id")),
    request_body = CallFlowImport,
    responses(
        (status = 200, description = "Imported (or checked, on a dry run)", body = CallFlowImportReport),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`call_flows.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The flows would make a loop no caller's key press leaves (`loop`)", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Rows that break a rule, each named `<section>[i].<field>` (e.g. `ring_groups[2].number` `already_exists`); nothing is written", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/api/v1/domains/{domain_id}/call-flows/import")]
pub async fn import_call_flows(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<CallFlowImport>,
) -> ApiResult<web::Json<CallFlowImportReport>> {
    let i = body.into_inner();
    let rows = i
        .ring_groups
        .into_iter()
        .map(|body| (FlowKind::RingGroup, body))
        .chain(i.ivr_menus.into_iter().map(|body| (FlowKind::Ivr, body)))
        .chain(
            i.time_conditions
                .into_iter()
                .map(|body| (FlowKind::TimeCondition, body)),
        )
        .map(|(kind, body)| call_flows::ImportRow { kind, body })
        .collect();
    let done = call_flows::import(
        &state.db,
        &state.events,
        caller.ctx(),
        path.into_inner(),
        rows,
        i.on_existing == OnExistingFlow::Update,
        i.dry_run,
    )
    .await?;
    Ok(web::Json(CallFlowImportReport {
        created: done.created,
        updated: done.updated,
        dry_run: done.dry_run,
    }))
}
