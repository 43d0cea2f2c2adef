//! The call history: a Domain's calls (`calls.read`), one call with its legs, a CSV export that
//! streams, the call's recording, and the person's own calls (`/api/v1/me/calls`).

use std::path::{Component, Path, PathBuf};
use std::str::FromStr as _;

use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType};
use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_domain::history::cdr::LegFacts;
use switchboard_domain::services::history::{self, CallFilter};
use switchboard_domain::store::calls::Model as CallRow;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::Query;
use crate::pagination::{PageQuery, PageResponse};
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;

const PROBLEM: &str = "application/problem+json";

/// Which way a call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallDirection {
    /// Between the Domain's own phones (and its voicemail).
    Internal,
    /// From a carrier, on one of the Domain's Numbers.
    Inbound,
    /// Out through an Outbound Route.
    Outbound,
}

impl CallDirection {
    fn as_str(self) -> &'static str {
        match self {
            Self::Internal => "internal",
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "inbound" => Self::Inbound,
            "outbound" => Self::Outbound,
            _ => Self::Internal,
        }
    }
}

/// One side of a call: the numbers and names as presented, and who it was.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallPartyDto {
    /// The number as presented (caller ID, or what was dialled).
    #[schema(example = "201")]
    pub number: Option<String>,
    /// The name as presented.
    #[schema(example = "Alice Example")]
    pub name: Option<String>,
    /// The person: the Extension logged in on the Device at that moment (or its owner).
    pub extension_id: Option<Uuid>,
    /// That Extension's number at the time.
    #[schema(example = "201")]
    pub extension_number: Option<String>,
    /// The Device (calling, or the one that answered).
    pub device_id: Option<Uuid>,
    /// The Device's Location.
    pub location_id: Option<Uuid>,
}

/// A call of the history.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallDto {
    /// Id (UUIDv7 of the start time: ids sort by time).
    pub id: Uuid,
    /// The Domain.
    pub domain_id: Option<Uuid>,
    /// Which way.
    pub direction: CallDirection,
    /// Who called.
    pub caller: CallPartyDto,
    /// Who was called.
    pub callee: CallPartyDto,
    /// The Outbound Route it left by.
    pub route_id: Option<Uuid>,
    /// The gateway (trunk) it used.
    pub gateway_id: Option<Uuid>,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// Answer (null: not answered).
    pub answered_at: Option<DateTime<Utc>>,
    /// End.
    pub ended_at: DateTime<Utc>,
    /// Seconds from start to end.
    pub duration_secs: i64,
    /// Seconds from answer to end.
    pub billed_secs: i64,
    /// Answered.
    pub answered: bool,
    /// FreeSWITCH's hangup cause.
    #[schema(example = "NORMAL_CLEARING")]
    pub hangup_cause: String,
    /// An emergency call.
    pub emergency: bool,
    /// The call was recorded: `GET …/calls/{id}/recording` downloads it.
    pub recorded: bool,
    /// The recording's length in milliseconds.
    pub recording_ms: Option<i64>,
    /// The FreeSWITCH node that carried it.
    pub node: Option<String>,
    /// How many legs FreeSWITCH reported.
    pub legs: i32,
}

impl From<CallRow> for CallDto {
    fn from(c: CallRow) -> Self {
        Self {
            id: c.id,
            domain_id: c.domain_id,
            direction: CallDirection::parse(&c.direction),
            caller: CallPartyDto {
                number: c.caller_number,
                name: c.caller_name,
                extension_id: c.caller_extension_id,
                extension_number: c.caller_extension_number,
                device_id: c.caller_device_id,
                location_id: c.caller_location_id,
            },
            callee: CallPartyDto {
                number: c.callee_number,
                name: c.callee_name,
                extension_id: c.callee_extension_id,
                extension_number: c.callee_extension_number,
                device_id: c.callee_device_id,
                location_id: c.callee_location_id,
            },
            route_id: c.route_id,
            gateway_id: c.gateway_id,
            duration_secs: (c.ended_at - c.started_at).num_seconds().max(0),
            started_at: c.started_at,
            answered: c.answered_at.is_some(),
            answered_at: c.answered_at,
            ended_at: c.ended_at,
            billed_secs: c.billed_secs,
            hangup_cause: c.hangup_cause,
            emergency: c.emergency,
            recorded: c.recording_path.is_some(),
            recording_ms: c.recording_ms,
            node: c.node,
            legs: c.legs,
        }
    }
}

/// One leg of a call, as FreeSWITCH reported it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallLegDto {
    /// FreeSWITCH's id of the leg.
    pub uuid: Uuid,
    /// The leg that created this one (a bridge, a forward).
    pub parent: Option<Uuid>,
    /// `inbound` (it called FreeSWITCH) or `outbound` (FreeSWITCH called it).
    pub channel_direction: Option<String>,
    /// A loopback leg (the plumbing of forwards and voicemail).
    pub loopback: bool,
    /// Caller number as presented on this leg.
    pub caller_number: Option<String>,
    /// Caller name.
    pub caller_name: Option<String>,
    /// What this leg dialled or was dialled with.
    pub destination: Option<String>,
    /// The Extension on this leg.
    pub extension_id: Option<Uuid>,
    /// The Device on this leg.
    pub device_id: Option<Uuid>,
    /// Its Location.
    pub location_id: Option<Uuid>,
    /// The gateway on this leg.
    pub gateway_id: Option<Uuid>,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// Answer.
    pub answered_at: Option<DateTime<Utc>>,
    /// End.
    pub ended_at: DateTime<Utc>,
    /// Seconds from answer to end.
    pub billed_secs: i64,
    /// FreeSWITCH's hangup cause.
    pub hangup_cause: String,
}

impl From<LegFacts> for CallLegDto {
    fn from(l: LegFacts) -> Self {
        Self {
            uuid: l.uuid,
            parent: l.parent,
            channel_direction: l.channel_direction,
            loopback: l.loopback,
            caller_number: l.caller_number,
            caller_name: l.caller_name,
            destination: l.destination,
            extension_id: l.extension_id,
            device_id: l.device_id,
            location_id: l.location_id,
            gateway_id: l.gateway_id,
            started_at: l.started_at,
            answered_at: l.answered_at,
            ended_at: l.ended_at,
            billed_secs: l.billed_secs,
            hangup_cause: l.hangup_cause,
        }
    }
}

/// A call with its legs.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallDetailDto {
    /// The call.
    #[serde(flatten)]
    pub call: CallDto,
    /// Its legs, oldest first.
    pub leg_details: Vec<CallLegDto>,
}

/// Filters of the call history.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallListQuery {
    /// Calls started at or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Calls started at or before (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// Calls this person (Extension) made or received.
    pub extension_id: Option<Uuid>,
    /// Calls made from or answered on this Device.
    pub device_id: Option<Uuid>,
    /// Calls made from or answered in this Location.
    pub location_id: Option<Uuid>,
    /// Which way.
    #[param(inline)]
    pub direction: Option<CallDirection>,
    /// Part of the caller's or callee's number, or an Extension number.
    pub number: Option<String>,
    /// Only answered (`true`) or unanswered (`false`) calls.
    pub answered: Option<bool>,
    /// Only emergency calls (`true`) or only others.
    pub emergency: Option<bool>,
}

impl CallListQuery {
    fn filter(self) -> CallFilter {
        CallFilter {
            from: self.from,
            to: self.to,
            extension_id: self.extension_id,
            device_id: self.device_id,
            location_id: self.location_id,
            direction: self.direction.map(|d| d.as_str().to_owned()),
            number: self.number,
            answered: self.answered,
            emergency: self.emergency,
        }
    }
}

/// List the Domain's calls (`calls.read`), newest first.
#[utoipa::path(
    tag = "calls",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), PageQuery, CallListQuery),
    responses(
        (status = 200, description = "One page, newest first", body = PageResponse<CallDto>),
        (status = 403, description = "`calls.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid filter or page", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/calls")]
pub async fn list_calls(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    page: Query<PageQuery>,
    filter: Query<CallListQuery>,
) -> ApiResult<web::Json<PageResponse<CallDto>>> {
    let page = page.0.to_request()?;
    let found = history::list(
        &state.db,
        caller.ctx(),
        path.into_inner(),
        &filter.into_inner().filter(),
        &page,
    )
    .await?;
    Ok(web::Json(PageResponse::from_page(found, CallDto::from)))
}

/// Read one call of the Domain with its legs (`calls.read`).
#[utoipa::path(
    tag = "calls",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Call id")),
    responses(
        (status = 200, description = "The call and its legs", body = CallDetailDto),
        (status = 403, description = "`calls.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such call in a Domain of mine", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/calls/{id}")]
pub async fn get_call(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<CallDetailDto>> {
    let (domain_id, id) = path.into_inner();
    let (call, legs) = history::get(&state.db, caller.ctx(), domain_id, id).await?;
    Ok(web::Json(CallDetailDto {
        call: call.into(),
        leg_details: legs.into_iter().map(CallLegDto::from).collect(),
    }))
}

const CSV_HEADER: &str = "id,started_at,answered_at,ended_at,direction,caller_number,caller_name,caller_extension,caller_extension_id,caller_device_id,caller_location_id,callee_number,callee_name,callee_extension,callee_extension_id,callee_device_id,callee_location_id,duration_secs,billed_secs,hangup_cause,emergency,recorded,route_id,gateway_id\n";

/// Rows per database round trip of an export.
const EXPORT_BATCH: u64 = 1000;

fn csv_field(out: &mut String, value: &str) {
    // A field that a spreadsheet would run as a formula is quoted with a leading apostrophe.
    let risky = value.starts_with(['=', '@', '\t', '\r'])
        || (value.starts_with(['+', '-'])
            && !value[1..].bytes().all(|b| b.is_ascii_digit() || b == b' '));
    if risky || value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        if risky {
            out.push('\'');
        }
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

fn csv_line(c: &CallRow) -> String {
    let mut out = String::with_capacity(400);
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let id = |v: Option<Uuid>| v.map(|u| u.to_string()).unwrap_or_default();
    let fields = [
        c.id.to_string(),
        c.started_at.to_rfc3339(),
        c.answered_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        c.ended_at.to_rfc3339(),
        c.direction.clone(),
        opt(&c.caller_number),
        opt(&c.caller_name),
        opt(&c.caller_extension_number),
        id(c.caller_extension_id),
        id(c.caller_device_id),
        id(c.caller_location_id),
        opt(&c.callee_number),
        opt(&c.callee_name),
        opt(&c.callee_extension_number),
        id(c.callee_extension_id),
        id(c.callee_device_id),
        id(c.callee_location_id),
        (c.ended_at - c.started_at).num_seconds().max(0).to_string(),
        c.billed_secs.to_string(),
        c.hangup_cause.clone(),
        c.emergency.to_string(),
        c.recording_path.is_some().to_string(),
        id(c.route_id),
        id(c.gateway_id),
    ];
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(&mut out, f);
    }
    out.push('\n');
    out
}

/// Export the Domain's calls as CSV (`calls.read`), newest first, with the list's filters.
///
/// The file streams: rows are read a thousand at a time as the client takes them, so an export
/// of any size runs in constant memory. A failure half-way ends the stream early (the last
/// line is then incomplete); the response is never a half-written 200 with an error inside.
#[utoipa::path(
    tag = "calls",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), CallListQuery),
    responses(
        (status = 200, description = "CSV, one call per line after the header", content_type = "text/csv", body = String),
        (status = 403, description = "`calls.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid filter", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/calls.csv")]
pub async fn export_calls(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    filter: Query<CallListQuery>,
) -> ApiResult<HttpResponse> {
    let domain_id = path.into_inner();
    let filter = filter.into_inner().filter();
    history::authorize_export(&state.db, caller.ctx(), domain_id, &filter).await?;
    let db = state.db.clone();
    struct Cursor {
        before: Option<Uuid>,
        header: bool,
        done: bool,
    }
    let start = Cursor {
        before: None,
        header: true,
        done: false,
    };
    let body = futures_util::stream::unfold(start, move |mut cur| {
        let db = db.clone();
        let filter = filter.clone();
        async move {
            if cur.done {
                return None;
            }
            let mut chunk = String::new();
            if cur.header {
                chunk.push_str(CSV_HEADER);
                cur.header = false;
            }
            match history::export_batch(&db, domain_id, &filter, cur.before, EXPORT_BATCH).await {
                Ok(rows) => {
                    if (rows.len() as u64) < EXPORT_BATCH {
                        cur.done = true;
                    }
                    cur.before = rows.last().map(|r| r.id);
                    for row in &rows {
                        chunk.push_str(&csv_line(row));
                    }
                    Some((Ok::<_, actix_web::Error>(web::Bytes::from(chunk)), cur))
                }
                Err(e) => {
                    tracing::error!(error = %e, "call export failed half-way");
                    cur.done = true;
                    Some((
                        Err(actix_web::error::ErrorInternalServerError("export failed")),
                        cur,
                    ))
                }
            }
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename("calls.csv".to_owned())],
        })
        .streaming(body))
}

/// The local file of a recording FreeSWITCH wrote at `path`: its last three parts
/// (`<SIP domain>/<yyyy-mm-dd>/<file>.wav`, the layout the dialplan gives) below
/// `history.recordings_dir`, whatever folder the FreeSWITCH node itself wrote to.
fn local_recording(state: &AppState, path: &str) -> Option<PathBuf> {
    let local = state.config.recordings_local_dir()?;
    let parts: Vec<Component<'_>> = Path::new(path).components().collect();
    let tail = parts.get(parts.len().checked_sub(3)?..)?;
    if !tail.iter().all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    let mut file = local;
    for part in tail {
        file.push(part.as_os_str());
    }
    Some(file)
}

async fn serve_recording(
    state: &AppState,
    req: &HttpRequest,
    call: &CallRow,
) -> ApiResult<HttpResponse> {
    let missing = || ApiError::not_found("recording");
    let path = call.recording_path.as_deref().ok_or_else(missing)?;
    let file = local_recording(state, path).ok_or_else(|| {
        tracing::warn!(
            call = %call.id,
            "a recording was asked for but history.recordings_dir does not reach it"
        );
        missing()
    })?;
    wav_download(req, &file, format!("{}.wav", call.id))
        .await
        .ok_or_else(missing)
}

/// A WAV file as a private download (`audio/wav`, `Range` answered 206, never cached); `None`
/// when it cannot be opened.
pub(crate) async fn wav_download(
    req: &HttpRequest,
    file: &Path,
    filename: String,
) -> Option<HttpResponse> {
    let named = actix_files::NamedFile::open_async(file)
        .await
        .ok()?
        .set_content_type(actix_web::mime::Mime::from_str("audio/wav").ok()?)
        .set_content_disposition(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(filename)],
        });
    let mut response = named.into_response(req);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("private, no-store"),
    );
    Some(response)
}

/// Download a call's recording (`calls.read`): `audio/wav`, with range requests.
#[utoipa::path(
    tag = "calls",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Call id")),
    responses(
        (status = 200, description = "The recording", content_type = "audio/wav", body = Vec<u8>),
        (status = 206, description = "Part of it (`Range`)", content_type = "audio/wav", body = Vec<u8>),
        (status = 403, description = "`calls.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such call, not recorded, or the file is not reachable from this node", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/calls/{id}/recording")]
pub async fn get_recording(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (domain_id, id) = path.into_inner();
    let (call, _) = history::get(&state.db, caller.ctx(), domain_id, id).await?;
    serve_recording(&state, &req, &call).await
}

/// List my own calls (made or received by my Extensions, in every Domain), newest first.
#[utoipa::path(
    tag = "calls",
    security(("bearer" = [])),
    params(PageQuery, CallListQuery),
    responses(
        (status = 200, description = "One page, newest first", body = PageResponse<CallDto>),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid filter or page", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/me/calls")]
pub async fn list_my_calls(
    state: web::Data<AppState>,
    caller: Caller,
    page: Query<PageQuery>,
    filter: Query<CallListQuery>,
) -> ApiResult<web::Json<PageResponse<CallDto>>> {
    let page = page.0.to_request()?;
    let found = history::list_mine(
        &state.db,
        caller.ctx(),
        &filter.into_inner().filter(),
        &page,
    )
    .await?;
    Ok(web::Json(PageResponse::from_page(found, CallDto::from)))
}

/// Read one of my own calls with its legs.
#[utoipa::path(
    tag = "calls",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Call id")),
    responses(
        (status = 200, description = "The call and its legs", body = CallDetailDto),
        (status = 404, description = "Not one of my calls", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/me/calls/{id}")]
pub async fn get_my_call(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<web::Json<CallDetailDto>> {
    let (call, legs) = history::get_mine(&state.db, caller.ctx(), path.into_inner()).await?;
    Ok(web::Json(CallDetailDto {
        call: call.into(),
        leg_details: legs.into_iter().map(CallLegDto::from).collect(),
    }))
}

/// Download the recording of one of my own calls: `audio/wav`, with range requests.
#[utoipa::path(
    tag = "calls",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Call id")),
    responses(
        (status = 200, description = "The recording", content_type = "audio/wav", body = Vec<u8>),
        (status = 206, description = "Part of it (`Range`)", content_type = "audio/wav", body = Vec<u8>),
        (status = 404, description = "Not one of my calls, not recorded, or not reachable", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/me/calls/{id}/recording")]
pub async fn get_my_recording(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let (call, _) = history::get_mine(&state.db, caller.ctx(), path.into_inner()).await?;
    serve_recording(&state, &req, &call).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        let mut out = String::new();
        csv_field(&mut out, "plain");
        out.push('|');
        csv_field(&mut out, "a,b \"c\"");
        out.push('|');
        csv_field(&mut out, "=HYPERLINK(\"x\")");
        out.push('|');
        csv_field(&mut out, "+4930123456");
        out.push('|');
        csv_field(&mut out, "+cmd|calc");
        assert_eq!(
            out,
            "plain|\"a,b \"\"c\"\"\"|\"'=HYPERLINK(\"\"x\"\")\"|+4930123456|\"'+cmd|calc\""
        );
    }
}
