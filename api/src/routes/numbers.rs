//! Numbers (DIDs): the platform's stock of E.164 numbers, assigned to Domains by platform
//! administrators (`numbers.manage`) and pointed at a destination by the Domain's
//! administrators (`numbers.read` / `numbers.write`); plus the bulk import of Numbers.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchboard_domain::routing::destination::{Destination, HangUpWith};
use switchboard_domain::services::numbers::{
    self, DestinationPatch, DomainNumberFilter, ImportError, ImportReport, ImportRow, NewNumber,
    NumberPatch, NumberedRow, StockFilter,
};
use switchboard_domain::store::numbers::Model as NumberRow;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::{Json, Query, within_body_timeout};
use crate::pagination::{PageQuery, PageResponse};
use crate::problem::{ApiError, ApiResult, PROBLEM_JSON, Problem};
use crate::routes::import::{
    CsvTable, FileError, ImportFormat, format_of, read_body, read_csv, refuse_nul,
    serde_field_error,
};
use crate::state::AppState;

const PROBLEM: &str = "application/problem+json";

/// How a hang-up destination ends the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HangUpCause {
    /// Busy tone (SIP 486).
    Busy,
    /// "Number not in service" (SIP 404).
    Unallocated,
    /// Refused (SIP 603).
    Rejected,
    /// Answered, then ended normally.
    Normal,
}

impl From<HangUpCause> for HangUpWith {
    fn from(c: HangUpCause) -> Self {
        match c {
            HangUpCause::Busy => Self::Busy,
            HangUpCause::Unallocated => Self::Unallocated,
            HangUpCause::Rejected => Self::Rejected,
            HangUpCause::Normal => Self::Normal,
        }
    }
}

impl From<HangUpWith> for HangUpCause {
    fn from(c: HangUpWith) -> Self {
        match c {
            HangUpWith::Busy => Self::Busy,
            HangUpWith::Unallocated => Self::Unallocated,
            HangUpWith::Rejected => Self::Rejected,
            HangUpWith::Normal => Self::Normal,
        }
    }
}

/// Where a call goes, as a tagged object: `{"type":"extension","extension_id":…}`,
/// `{"type":"voicemail","extension_id":…}`, `{"type":"external","number":"+4930…"}`,
/// `{"type":"hang_up","cause":"busy"}`, `{"type":"ring_group","ring_group_id":…}`,
/// `{"type":"ivr","ivr_id":…}`, `{"type":"time_condition","time_condition_id":…}`. The same
/// type is used by Numbers and by every call flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[schema(example = json!({"type": "extension", "extension_id": "0193a5b2-7c1e-7d3f-9a51-2b8c4d6e8f10"}))]
pub enum DestinationDto {
    /// Ring an Extension of the Domain (its ring plan, with its busy / no-answer outcomes).
    Extension {
        /// An Extension of the Number's Domain.
        extension_id: Uuid,
    },
    /// Straight to an Extension's voicemail box.
    Voicemail {
        /// An Extension of the Number's Domain.
        extension_id: Uuid,
    },
    /// An external number, dialled through the Domain's Outbound Routes.
    External {
        /// `+` and digits, or the digits a phone would dial (2–20 characters).
        #[schema(example = "+4930987654")]
        number: String,
    },
    /// End the call.
    HangUp {
        /// How.
        cause: HangUpCause,
    },
    /// A ring group of the Domain.
    RingGroup {
        /// A ring group of the same Domain.
        ring_group_id: Uuid,
    },
    /// An IVR menu of the Domain.
    Ivr {
        /// An IVR menu of the same Domain.
        ivr_id: Uuid,
    },
    /// A time condition of the Domain.
    TimeCondition {
        /// A time condition of the same Domain.
        time_condition_id: Uuid,
    },
}

impl From<DestinationDto> for Destination {
    fn from(d: DestinationDto) -> Self {
        match d {
            DestinationDto::Extension { extension_id } => Self::Extension { extension_id },
            DestinationDto::Voicemail { extension_id } => Self::Voicemail { extension_id },
            DestinationDto::External { number } => Self::External { number },
            DestinationDto::RingGroup { ring_group_id } => Self::RingGroup { ring_group_id },
            DestinationDto::Ivr { ivr_id } => Self::Ivr { ivr_id },
            DestinationDto::TimeCondition { time_condition_id } => {
                Self::TimeCondition { time_condition_id }
            }
            DestinationDto::HangUp { cause } => Self::HangUp {
                cause: cause.into(),
            },
        }
    }
}

impl From<Destination> for DestinationDto {
    fn from(d: Destination) -> Self {
        match d {
            Destination::Extension { extension_id } => Self::Extension { extension_id },
            Destination::Voicemail { extension_id } => Self::Voicemail { extension_id },
            Destination::External { number } => Self::External { number },
            Destination::RingGroup { ring_group_id } => Self::RingGroup { ring_group_id },
            Destination::Ivr { ivr_id } => Self::Ivr { ivr_id },
            Destination::TimeCondition { time_condition_id } => {
                Self::TimeCondition { time_condition_id }
            }
            Destination::HangUp { cause } => Self::HangUp {
                cause: cause.into(),
            },
        }
    }
}

/// A Number (DID).
#[derive(Debug, Serialize, ToSchema)]
pub struct NumberDto {
    /// Id.
    pub id: Uuid,
    /// The number, E.164, unique on the platform.
    #[schema(example = "+4930123456")]
    pub number: String,
    /// The Domain it is assigned to; null: in the platform's stock.
    pub domain_id: Option<Uuid>,
    /// Free text.
    #[schema(example = "Main line")]
    pub description: String,
    /// Where calls to it go; null: nowhere (they end as unallocated).
    pub destination: Option<DestinationDto>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last updated.
    pub updated_at: DateTime<Utc>,
}

impl From<NumberRow> for NumberDto {
    fn from(n: NumberRow) -> Self {
        Self {
            destination: n.destination().map(Into::into),
            id: n.id,
            number: n.number,
            domain_id: n.domain_id,
            description: n.description,
            created_at: n.created_at,
            updated_at: n.updated_at,
        }
    }
}

/// A Number to add to the platform.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"number": "+49 30 123456", "description": "Main line", "domain_id": "0193a5b2-7c1e-7d3f-9a51-2b8c4d6e8f10"}))]
pub struct CreateNumberRequest {
    /// E.164 (`+`, country code, number); spaces, `-`, `(` and `)` are dropped.
    #[schema(example = "+4930123456")]
    pub number: String,
    /// Assign it to this Domain right away; omitted or null: into the stock.
    pub domain_id: Option<Uuid>,
    /// Up to 500 characters.
    pub description: Option<String>,
    /// Where calls to it go (needs `domain_id`); omitted or null: nowhere.
    pub destination: Option<DestinationDto>,
}

/// A platform change to a Number; omitted fields stay. Setting `domain_id` to another Domain
/// or to null (back to the stock) clears the destination unless one is given as well.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"domain_id": "0193a5b2-7c1e-7d3f-9a51-2b8c4d6e8f10"}))]
pub struct UpdateNumberRequest {
    /// Up to 500 characters.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = String)]
    pub description: Option<String>,
    /// Assign or move to this Domain; null: back to the stock.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub domain_id: Option<Option<Uuid>>,
    /// Where calls to it go; null: nowhere.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<DestinationDto>)]
    pub destination: Option<Option<DestinationDto>>,
}

/// A Domain's change to one of its Numbers; omitted fields stay.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"destination": {"type": "hang_up", "cause": "busy"}}))]
pub struct UpdateDomainNumberRequest {
    /// Up to 500 characters.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = String)]
    pub description: Option<String>,
    /// Where calls to it go; null: nowhere (calls end as unallocated).
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<DestinationDto>)]
    pub destination: Option<Option<DestinationDto>>,
}

/// Filters of the platform's Number list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NumberListQuery {
    /// Only the Numbers of this Domain.
    pub domain_id: Option<Uuid>,
    /// `true`: only assigned Numbers; `false`: only the stock.
    pub assigned: Option<bool>,
    /// Part of the number, e.g. `+4930` or `1234`.
    pub q: Option<String>,
}

/// What a Domain's Numbers may point at, as a filter.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DestinationTypeFilter {
    /// An Extension.
    Extension,
    /// An Extension's voicemail.
    Voicemail,
    /// An external number.
    External,
    /// A hang-up cause.
    HangUp,
    /// A ring group.
    RingGroup,
    /// An IVR menu.
    Ivr,
    /// A time condition.
    TimeCondition,
    /// Nowhere.
    None,
}

impl DestinationTypeFilter {
    fn as_str(self) -> &'static str {
        match self {
            Self::Extension => "extension",
            Self::Voicemail => "voicemail",
            Self::External => "external",
            Self::HangUp => "hang_up",
            Self::RingGroup => "ring_group",
            Self::Ivr => "ivr",
            Self::TimeCondition => "time_condition",
            Self::None => "none",
        }
    }
}

/// Filters of a Domain's Number list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DomainNumberListQuery {
    /// Part of the number.
    pub q: Option<String>,
    /// Only Numbers pointing at this kind of destination (`none`: pointing nowhere).
    #[param(inline)]
    pub destination_type: Option<DestinationTypeFilter>,
    /// Only Numbers pointing at this Extension (ringing it or its voicemail).
    pub extension_id: Option<Uuid>,
}

/// Add a Number to the platform (platform `numbers.manage`), optionally assigned to a Domain
/// and pointed at a destination there.
#[utoipa::path(
    tag = "numbers",
    security(("bearer" = [])),
    request_body = CreateNumberRequest,
    responses(
        (status = 201, description = "Created", body = NumberDto),
        (status = 409, description = "`number_taken`: the number is already on the platform", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid fields: not E.164 (`number`), no such Domain (`domain_id`), an Extension not of that Domain (`destination.extension_id`), a destination without a Domain (`destination`)", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/api/v1/numbers")]
pub async fn create_number(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<CreateNumberRequest>,
) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    let created = numbers::create(
        &state.db,
        &state.events,
        caller.ctx(),
        NewNumber {
            number: b.number,
            domain_id: b.domain_id,
            description: b.description,
            destination: b.destination.map(Into::into),
        },
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/numbers/{}", created.id)))
        .json(NumberDto::from(created)))
}

/// List the platform's Numbers (platform `numbers.manage`), oldest first.
#[utoipa::path(
    tag = "numbers",
    security(("bearer" = [])),
    params(PageQuery, NumberListQuery),
    responses((status = 200, description = "One page", body = PageResponse<NumberDto>))
)]
#[get("/api/v1/numbers")]
pub async fn list_numbers(
    state: web::Data<AppState>,
    caller: Caller,
    page: Query<PageQuery>,
    filter: Query<NumberListQuery>,
) -> ApiResult<web::Json<PageResponse<NumberDto>>> {
    let page = page.0.to_request()?;
    let f = filter.into_inner();
    let filter = StockFilter {
        domain_id: f.domain_id,
        assigned: f.assigned,
        q: f.q,
    };
    let found = numbers::list_all(&state.db, caller.ctx(), &filter, &page).await?;
    Ok(web::Json(PageResponse::from_page(found, NumberDto::from)))
}

/// Read any Number (platform `numbers.manage`).
#[utoipa::path(
    tag = "numbers",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Number id")),
    responses((status = 200, description = "The Number", body = NumberDto))
)]
#[get("/api/v1/numbers/{id}")]
pub async fn get_number(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<web::Json<NumberDto>> {
    Ok(web::Json(
        numbers::get_any(&state.db, caller.ctx(), path.into_inner())
            .await?
            .into(),
    ))
}

/// Change a Number at platform level (platform `numbers.manage`): description, assignment
/// (`domain_id`: assign, move, or null for back to the stock; leaving a Domain clears the
/// destination) and destination.
#[utoipa::path(
    tag = "numbers",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Number id")),
    request_body = UpdateNumberRequest,
    responses(
        (status = 200, description = "Changed", body = NumberDto),
        (status = 422, description = "Invalid fields: no such Domain (`domain_id`), an Extension not of the Number's Domain (`destination.extension_id`), a destination for a Number in the stock (`destination`)", body = Problem, content_type = PROBLEM),
    )
)]
#[patch("/api/v1/numbers/{id}")]
pub async fn update_number(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<UpdateNumberRequest>,
) -> ApiResult<web::Json<NumberDto>> {
    let b = body.into_inner();
    let updated = numbers::update_any(
        &state.db,
        &state.events,
        caller.ctx(),
        path.into_inner(),
        NumberPatch {
            description: b.description,
            domain_id: b.domain_id,
            destination: b.destination.map(|d| d.map(Into::into)),
        },
    )
    .await?;
    Ok(web::Json(updated.into()))
}

/// Delete a Number from the platform (platform `numbers.manage`).
#[utoipa::path(
    tag = "numbers",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Number id")),
    responses((status = 204, description = "Deleted"))
)]
#[delete("/api/v1/numbers/{id}")]
pub async fn delete_number(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    numbers::delete_any(&state.db, &state.events, caller.ctx(), path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// List the Domain's Numbers (`numbers.read`), oldest first.
#[utoipa::path(
    tag = "numbers",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), PageQuery, DomainNumberListQuery),
    responses((status = 200, description = "One page", body = PageResponse<NumberDto>))
)]
#[get("/api/v1/domains/{domain_id}/numbers")]
pub async fn list_domain_numbers(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    page: Query<PageQuery>,
    filter: Query<DomainNumberListQuery>,
) -> ApiResult<web::Json<PageResponse<NumberDto>>> {
    let page = page.0.to_request()?;
    let f = filter.into_inner();
    let filter = DomainNumberFilter {
        q: f.q,
        destination_type: f.destination_type.map(|t| t.as_str().to_owned()),
        extension_id: f.extension_id,
    };
    let found = numbers::list(&state.db, caller.ctx(), path.into_inner(), &filter, &page).await?;
    Ok(web::Json(PageResponse::from_page(found, NumberDto::from)))
}

/// Read one of the Domain's Numbers (`numbers.read`).
#[utoipa::path(
    tag = "numbers",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Number id")),
    responses((status = 200, description = "The Number", body = NumberDto))
)]
#[get("/api/v1/domains/{domain_id}/numbers/{id}")]
pub async fn get_domain_number(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<NumberDto>> {
    let (domain_id, id) = path.into_inner();
    Ok(web::Json(
        numbers::get(&state.db, caller.ctx(), domain_id, id)
            .await?
            .into(),
    ))
}

/// Point one of the Domain's Numbers at a destination, or change its description
/// (`numbers.write`). An Extension or voicemail destination must name an Extension of this
/// Domain.
#[utoipa::path(
    tag = "numbers",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Number id")),
    request_body = UpdateDomainNumberRequest,
    responses(
        (status = 200, description = "Changed", body = NumberDto),
        (status = 422, description = "Invalid fields: no such Extension in this Domain (`destination.extension_id`), an external number that cannot be dialled (`destination.number`), a bad description", body = Problem, content_type = PROBLEM),
    )
)]
#[patch("/api/v1/domains/{domain_id}/numbers/{id}")]
pub async fn update_domain_number(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<UpdateDomainNumberRequest>,
) -> ApiResult<web::Json<NumberDto>> {
    let (domain_id, id) = path.into_inner();
    let b = body.into_inner();
    let updated = numbers::update(
        &state.db,
        &state.events,
        caller.ctx(),
        domain_id,
        id,
        DestinationPatch {
            description: b.description,
            destination: b.destination.map(|d| d.map(Into::into)),
        },
    )
    .await?;
    Ok(web::Json(updated.into()))
}

// ---------------------------------------------------------------------------------------------
// Import

/// One row of a Number import.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NumberImportRow {
    /// E.164.
    #[schema(example = "+4930123456")]
    pub number: String,
    /// The SIP domain of the Domain to assign it to; empty or omitted: the stock.
    #[schema(example = "acme.pbx.example.net")]
    pub domain: Option<String>,
    /// Free text; empty or omitted: none.
    pub description: Option<String>,
    /// `extension`, `voicemail`, `external`, `hang_up`; empty or omitted: nowhere.
    #[schema(example = "extension")]
    pub destination_type: Option<String>,
    /// The Extension's number (`extension`, `voicemail`), the number (`external`) or the
    /// cause (`hang_up`: busy, unallocated, rejected, normal).
    #[schema(example = "201")]
    pub destination: Option<String>,
}

/// A JSON Number import body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NumberImportRequest {
    /// The rows; each describes its Number completely.
    pub rows: Vec<NumberImportRow>,
    /// Only check, write nothing (also `?dry_run=true`).
    #[serde(default)]
    pub dry_run: bool,
}

/// `?dry_run=true`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NumberImportQuery {
    /// Only check every row and answer the report; write nothing.
    pub dry_run: Option<bool>,
}

/// One problem with one field of one row of a Number import.
#[derive(Debug, Serialize, ToSchema)]
pub struct NumberImportRowError {
    /// JSON: the 1-based position in `rows`. CSV: the line of the file (the header is 1).
    #[schema(example = 3)]
    pub row: usize,
    /// The field (column).
    #[schema(example = "destination")]
    pub field: String,
    /// Stable code: `required`, `invalid_e164`, `duplicate_in_file`, `not_found`,
    /// `invalid_choice`, `invalid_number`, `unassigned`, `unknown_field`, `invalid_type`.
    #[schema(example = "not_found")]
    pub code: String,
    /// For people.
    #[schema(example = "no Extension 299 in acme.pbx.example.net")]
    pub message: String,
}

impl From<ImportError> for NumberImportRowError {
    fn from(e: ImportError) -> Self {
        Self {
            row: e.row,
            field: e.field,
            code: e.code,
            message: e.message,
        }
    }
}

/// The result of a Number import or a dry run.
#[derive(Debug, Serialize, ToSchema)]
pub struct NumberImportReport {
    /// True when every row passed.
    pub valid: bool,
    /// True for a dry run.
    pub dry_run: bool,
    /// True when the rows were written (all of them, in one transaction).
    pub imported: bool,
    /// Rows in the file.
    pub rows: usize,
    /// Numbers created (a dry run: that would be).
    pub created: usize,
    /// Existing Numbers changed (a dry run: that would be).
    pub updated: usize,
    /// Existing Numbers already as their row says.
    pub unchanged: usize,
    /// Every problem, ordered by row; empty when valid.
    pub errors: Vec<NumberImportRowError>,
}

impl From<ImportReport> for NumberImportReport {
    fn from(r: ImportReport) -> Self {
        Self {
            valid: r.valid,
            dry_run: r.dry_run,
            imported: r.imported,
            rows: r.rows,
            created: r.created,
            updated: r.updated,
            unchanged: r.unchanged,
            errors: r.errors.into_iter().map(Into::into).collect(),
        }
    }
}

/// The 422 answer of a Number import with invalid rows: a problem document (code
/// `validation_failed`) whose `errors` are the rows' errors.
#[derive(Debug, Serialize, ToSchema)]
pub struct NumberImportProblem {
    /// `urn:switchboard:problem:validation_failed`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// `Unprocessable Entity`.
    pub title: String,
    /// 422.
    pub status: u16,
    /// How many errors, and that nothing was written.
    pub detail: String,
    /// `validation_failed`.
    pub code: String,
    /// The report (`valid` and `imported` false).
    #[serde(flatten)]
    pub report: NumberImportReport,
}

/// The 422 answer of a Number import: invalid rows, or a request refused before any row was
/// read (a plain problem).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum NumberImportRefusal {
    /// Invalid rows.
    Rows(NumberImportProblem),
    /// The request itself.
    Request(Problem),
}

/// The CSV columns of a Number import.
pub const NUMBER_CSV_COLUMNS: &[&str] = &[
    "number",
    "domain",
    "description",
    "destination_type",
    "destination",
];

/// Reads a Number import file: the rows, the rows that could not be read, and the JSON body's
/// `dry_run`.
fn parse_number_file(
    format: ImportFormat,
    bytes: &[u8],
) -> Result<(Vec<NumberedRow>, Vec<ImportError>, bool), FileError> {
    match format {
        ImportFormat::Json => parse_json(bytes),
        ImportFormat::Csv => parse_csv(bytes).map(|(rows, bad)| (rows, bad, false)),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBody {
    rows: Vec<Value>,
    #[serde(default)]
    dry_run: bool,
}

fn parse_json(bytes: &[u8]) -> Result<(Vec<NumberedRow>, Vec<ImportError>, bool), FileError> {
    let malformed = |e: &serde_json::Error| {
        FileError::malformed(
            "malformed_json",
            format!(
                "the file is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let body: RawBody = match serde_path_to_error::deserialize(&mut de) {
        Ok(body) => body,
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            return Err(match inner.classify() {
                serde_json::error::Category::Data => {
                    let f = serde_field_error(&path, &inner.to_string());
                    FileError::shape(&f.field, &f.code, f.message)
                }
                _ => malformed(&inner),
            });
        }
    };
    de.end().map_err(|e| malformed(&e))?;
    let mut rows = Vec::new();
    let mut unreadable = Vec::new();
    for (i, value) in body.rows.into_iter().enumerate() {
        read_row(i + 1, value, &mut rows, &mut unreadable);
    }
    Ok((rows, unreadable, body.dry_run))
}

fn read_row(row: usize, value: Value, rows: &mut Vec<NumberedRow>, bad: &mut Vec<ImportError>) {
    match serde_path_to_error::deserialize::<_, NumberImportRow>(value) {
        Ok(r) => rows.push(NumberedRow {
            row,
            value: ImportRow {
                number: Some(r.number),
                domain: r.domain,
                description: r.description,
                destination_type: r.destination_type,
                destination: r.destination,
            },
        }),
        Err(err) => {
            let path = err.path().to_string();
            let error = serde_field_error(&path, &err.into_inner().to_string());
            bad.push(ImportError::new(row, error));
        }
    }
}

fn parse_csv(bytes: &[u8]) -> Result<(Vec<NumberedRow>, Vec<ImportError>), FileError> {
    let CsvTable { headers, records } =
        read_csv(bytes, NUMBER_CSV_COLUMNS, "a Number import column")?;
    if !headers.iter().any(|h| h == "number") {
        return Err(FileError::shape(
            "number",
            "required",
            "a `number` column is required",
        ));
    }
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    for (row, record) in records {
        let mut object = Map::new();
        for (h, cell) in headers.iter().zip(record.iter()) {
            if !cell.is_empty() {
                object.insert(h.clone(), Value::String(cell.to_owned()));
            }
        }
        if !object.contains_key("number") {
            object.insert("number".into(), Value::String(String::new()));
        }
        read_row(row, Value::Object(object), &mut rows, &mut bad);
    }
    Ok((rows, bad))
}

/// Import Numbers from JSON or CSV (platform `numbers.manage`), all or nothing.
///
/// Each row describes a Number completely: `number` (E.164, required), `domain` (the SIP
/// domain of the Domain it is assigned to; empty: the stock), `description`,
/// `destination_type` (`extension`, `voicemail`, `external`, `hang_up`; empty: nowhere) and
/// `destination` (the Extension's number in that Domain, the external number, or the hang-up
/// cause). A number already on the platform is updated to exactly the row (moving it to
/// another Domain, or to the stock); a new one is created. Every row is checked first; one bad
/// row and nothing is written (422 listing every row's errors with its `row` and `field`).
/// A dry run (`?dry_run=true`, or `"dry_run": true` in JSON) writes nothing and answers the
/// report with 200: how many Numbers would be created, updated or stay unchanged.
///
/// **JSON**: `{"rows": [{"number": "+4930123456", "domain": "acme.example.net",
/// "destination_type": "extension", "destination": "201"}], "dry_run": false}`; a row's `row`
/// is its 1-based position.
///
/// **CSV** (`text/csv`, `,` or `;` separated, header line required): the columns `number,
/// domain, description, destination_type, destination` (only `number` is required); a row's
/// `row` is its line in the file.
#[utoipa::path(
    tag = "numbers",
    security(("bearer" = [])),
    params(NumberImportQuery),
    request_body(
        description = "The rows, as JSON or as CSV",
        content(
            (NumberImportRequest = "application/json", example = json!({
                "rows": [
                    {"number": "+4930123456", "domain": "acme.pbx.example.net", "description": "Main line", "destination_type": "extension", "destination": "201"},
                    {"number": "+4930123457", "domain": "acme.pbx.example.net", "destination_type": "hang_up", "destination": "busy"},
                    {"number": "+4930123458"}
                ]
            })),
            (String = "text/csv", example = "number,domain,description,destination_type,destination\n+4930123456,acme.pbx.example.net,Main line,extension,201\n+4930123458,,,,\n")
        )
    ),
    responses(
        (status = 200, description = "Dry run: the report (`valid` says whether the import would succeed); nothing written", body = NumberImportReport),
        (status = 201, description = "Imported: every row written in one transaction", body = NumberImportReport),
        (status = 409, description = "`number_taken`: a concurrent request added a number of the file between the checks and the insert; nothing written, retry", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid rows (`errors` lists each with `row` and `field`), a file of the wrong shape, or one without rows (`empty`); nothing written", body = NumberImportRefusal, content_type = PROBLEM),
    )
)]
#[post("/api/v1/numbers/import")]
pub async fn import_numbers(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    query: Query<NumberImportQuery>,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    // Refuse before reading a large body for someone who may not import anyway.
    switchboard_domain::identity::authz::authorize_platform(
        &caller.ctx().actor,
        switchboard_domain::identity::permissions::Permission::NumbersManage,
    )?;
    let format = format_of(&req)?;
    let limit = state.config.http.max_import_bytes;
    let body = within_body_timeout(&req, read_body(&req, payload, limit)).await?;
    refuse_nul(format, &body)?;
    let (rows, unreadable, body_dry_run) = web::block(move || parse_number_file(format, &body))
        .await
        .map_err(ApiError::internal)??;
    let dry_run = body_dry_run || query.into_inner().dry_run.unwrap_or(false);
    let report = numbers::import(
        &state.db,
        &state.events,
        caller.ctx(),
        rows,
        unreadable,
        dry_run,
    )
    .await?;
    Ok(if report.dry_run {
        HttpResponse::Ok().json(NumberImportReport::from(report))
    } else if !report.valid {
        let status = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
        let detail = format!(
            "{} error(s) in {} row(s); nothing was imported",
            report.errors.len(),
            report.rows
        );
        HttpResponse::UnprocessableEntity()
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)))
            .json(NumberImportProblem {
                problem_type: "urn:switchboard:problem:validation_failed".to_owned(),
                title: status.canonical_reason().unwrap_or("Error").to_owned(),
                status: status.as_u16(),
                detail,
                code: "validation_failed".to_owned(),
                report: report.into(),
            })
    } else {
        HttpResponse::Created().json(NumberImportReport::from(report))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_are_numbered_by_line_and_empty_cells_are_absent() {
        let Ok((rows, bad)) = parse_csv(
            b"number,domain,destination_type,destination\n+4930123456,acme.example,extension,201\n\n+4930123457,,,\n",
        ) else {
            panic!("readable");
        };
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(rows.iter().map(|r| r.row).collect::<Vec<_>>(), [2, 4]);
        assert_eq!(rows[0].value.destination.as_deref(), Some("201"));
        assert_eq!(rows[1].value.domain, None);
        assert!(parse_csv(b"number,owner\n+4930123456,x\n").is_err());
    }

    #[test]
    fn a_json_row_with_an_unknown_field_is_an_error_of_that_row() {
        let Ok((rows, bad, dry_run)) = parse_json(
            br#"{"rows": [{"number": "+4930123456"}, {"number": "+4930123457", "owner": "x"}], "dry_run": true}"#,
        ) else {
            panic!("readable");
        };
        assert!(dry_run);
        assert_eq!(rows.len(), 1);
        assert_eq!((bad[0].row, bad[0].code.as_str()), (2, "unknown_field"));
    }

    #[test]
    fn destinations_are_tagged_objects() {
        let d: DestinationDto =
            serde_json::from_value(serde_json::json!({"type": "hang_up", "cause": "busy"}))
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            Destination::from(d),
            Destination::HangUp {
                cause: HangUpWith::Busy
            }
        );
    }
}
