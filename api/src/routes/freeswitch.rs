//! `POST /freeswitch/xml`: FreeSWITCH's mod_xml_curl asks who may register and what to ring.
//!
//! This is the hot path (every REGISTER and every call to a user), answered from the
//! precompiled directory (`switchboard_esl_bridge::directory`). It speaks FreeSWITCH's
//! language, not the JSON API's: refusals are plain 401/403/413 (FreeSWITCH then falls back to
//! its next binding), and anything we cannot answer is the "not found" document, never a 500.

use std::net::IpAddr;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, post, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt as _;
use secrecy::ExposeSecret as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use switchboard_esl_bridge::xml::request::XmlCurlRequest;

use crate::config::XmlCurlConfig;
use crate::state::AppState;

/// The realm FreeSWITCH is challenged with.
const REALM: &str = "switchboard-freeswitch";

fn plain(status: actix_web::http::StatusCode, text: &'static str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(text)
}

/// True when the peer address is in one of the allowed networks.
fn address_allowed(state: &AppState, peer: Option<IpAddr>) -> bool {
    let Some(ip) = peer.map(|ip| ip.to_canonical()) else {
        return false;
    };
    state.xml_curl_networks.iter().any(|net| net.contains(&ip))
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Checks `Authorization: Basic …` against the configured pair in constant time (both sides
/// are hashed first, so not even the lengths leak). No password configured: no check.
fn credentials_ok(config: &XmlCurlConfig, req: &HttpRequest) -> bool {
    let Some(password) = &config.password else {
        return true;
    };
    let Some(given) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|v| STANDARD.decode(v.trim()).ok())
    else {
        return false;
    };
    let (user, pass) = match given.iter().position(|b| *b == b':') {
        Some(i) => (&given[..i], &given[i + 1..]),
        None => (&given[..], &[][..]),
    };
    let user_ok = digest(user).ct_eq(&digest(config.username.as_bytes()));
    let pass_ok = digest(pass).ct_eq(&digest(password.expose_secret().as_bytes()));
    bool::from(user_ok & pass_ok)
}

/// Why a FreeSWITCH-facing request is turned away before its body is read.
enum Refusal {
    /// Not from an allowed network (403).
    Address,
    /// Without the basic-auth pair (401).
    Credentials,
    /// The body could not be read (400).
    Unreadable,
    /// The body is over the limit (413; the rest is never read, so the connection closes).
    TooLarge,
}

impl Refusal {
    /// The label of `switchboard_xmlcurl_refused_total`.
    const fn label(&self) -> &'static str {
        match self {
            Self::Address => "address",
            Self::Credentials => "credentials",
            Self::Unreadable => "unreadable",
            Self::TooLarge => "too_large",
        }
    }

    fn response(&self) -> HttpResponse {
        use actix_web::http::StatusCode;
        match self {
            Self::Address => plain(StatusCode::FORBIDDEN, "address not allowed\n"),
            Self::Credentials => HttpResponse::Unauthorized()
                .insert_header((header::WWW_AUTHENTICATE, format!("Basic realm=\"{REALM}\"")))
                .content_type("text/plain; charset=utf-8")
                .body("credentials required\n"),
            Self::Unreadable => plain(StatusCode::BAD_REQUEST, "unreadable body\n"),
            Self::TooLarge => HttpResponse::PayloadTooLarge()
                .force_close()
                .content_type("text/plain; charset=utf-8")
                .body("body too large\n"),
        }
    }
}

/// Admits a request from FreeSWITCH (allowed address, then credentials) and reads its body up
/// to `limit` bytes.
async fn admit(
    state: &AppState,
    req: &HttpRequest,
    payload: &mut web::Payload,
    limit: usize,
) -> Result<web::BytesMut, Refusal> {
    if !address_allowed(state, req.peer_addr().map(|a| a.ip())) {
        tracing::warn!(peer = ?req.peer_addr(), path = req.path(), "a FreeSWITCH request from an address that is not allowed");
        return Err(Refusal::Address);
    }
    if !credentials_ok(&state.config.freeswitch.xml_curl, req) {
        return Err(Refusal::Credentials);
    }
    let mut body = web::BytesMut::with_capacity(8192);
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| Refusal::Unreadable)?;
        if body.len() + chunk.len() > limit {
            drain(payload, body.len() + chunk.len(), limit).await;
            return Err(Refusal::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads and discards the rest of a body that is over `limit`, up to four times the limit
/// and for at most two seconds, so the sender sees the 413 instead of a reset connection
/// (closing a socket with unread data resets it, and the client may lose the answer). A
/// larger or slower body is cut off: the connection closes after the 413 either way.
async fn drain(payload: &mut web::Payload, mut read: usize, limit: usize) {
    let bound = limit.saturating_mul(4);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        while read <= bound {
            match payload.next().await {
                Some(Ok(chunk)) => read += chunk.len(),
                _ => break,
            }
        }
    })
    .await;
}

/// Answers a mod_xml_curl request (directory or dialplan).
///
/// The body is exactly what mod_xml_curl posts (`application/x-www-form-urlencoded`; see
/// `shared/FREESWITCH.md`). The answer is a FreeSWITCH XML document: the directory user with
/// its `a1-hash`, `dial-string`, `mwi-account` and calling-identity variables, a call group,
/// every Domain (`purpose=gateways`), a bare Domain, the feature-code dialplan, or
/// `<result status="not found"/>`.
#[utoipa::path(
    tag = "freeswitch",
    request_body(
        content = String,
        content_type = "application/x-www-form-urlencoded",
        description = "The form mod_xml_curl posts: hostname, section, tag_name, key_name, key_value, then every header of the request event."
    ),
    responses(
        (status = 200, description = "A FreeSWITCH XML document (possibly `result status=\"not found\"`)", content_type = "text/xml", body = String),
        (status = 401, description = "Missing or wrong basic-auth credentials", content_type = "text/plain", body = String),
        (status = 403, description = "The source address is not in `freeswitch.xml_curl.allowed_networks`", content_type = "text/plain", body = String),
        (status = 413, description = "The body is larger than `freeswitch.xml_curl.max_body_bytes`", content_type = "text/plain", body = String),
    ),
    security(("freeswitch_basic" = []))
)]
#[post("/freeswitch/xml")]
pub async fn xml_curl(
    state: web::Data<AppState>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> HttpResponse {
    let limit = state.config.freeswitch.xml_curl.max_body_bytes;
    let body = match admit(&state, &req, &mut payload, limit).await {
        Ok(body) => body,
        Err(refusal) => {
            state.directory.refused(refusal.label());
            return refusal.response();
        }
    };

    let request = XmlCurlRequest::parse(&body);
    let answer = state.directory.answer(&request).await;
    if let Some((domain_id, sip_domain, call)) = &answer.emergency {
        report_emergency(&state, &request, *domain_id, sip_domain, call);
    }
    tracing::debug!(
        kind = answer.kind.as_str(),
        section = request.get("section").unwrap_or("-"),
        action = request.get("action").unwrap_or("-"),
        "mod_xml_curl answered"
    );
    HttpResponse::Ok()
        .content_type("text/xml; charset=utf-8")
        .body(answer.body)
}

/// Puts an emergency call on the Domain's live stream (`call.emergency`), once per call: a
/// call looked up twice (a transfer from the logged-out context) is reported by the lookup
/// that decided its route.
fn report_emergency(
    state: &AppState,
    request: &switchboard_esl_bridge::xml::request::XmlCurlRequest,
    domain_id: uuid::Uuid,
    sip_domain: &str,
    call: &switchboard_domain::routing::dialplan::EmergencyCall,
) {
    use switchboard_domain::events::{ChangeEvent, ChangeKind};
    let channel = request
        .get("Unique-ID")
        .or_else(|| request.get("Channel-Call-UUID"))
        .unwrap_or_default();
    tracing::warn!(
        %domain_id,
        dialled = %call.dialled,
        caller_id = call.caller_id_number.as_deref().unwrap_or("-"),
        channel,
        "emergency call"
    );
    let mut event = ChangeEvent::new(
        domain_id,
        sip_domain,
        ChangeKind::CallEmergency,
        call.caller
            .as_ref()
            .and_then(|c| c.device_id.or(c.extension.as_ref().map(|e| e.id)))
            .unwrap_or(domain_id),
        chrono::Utc::now(),
    );
    let mut detail = serde_json::to_value(call).unwrap_or_default();
    if let Some(map) = detail.as_object_mut() {
        map.insert("channel".into(), serde_json::Value::from(channel));
    }
    event.detail = Some(detail);
    state.events.publish([event]);
}

/// The largest CDR accepted (a long call with many transfers and an app log stays far below).
const MAX_CDR_BYTES: usize = 4 * 1024 * 1024;

/// Receives one leg's CDR from FreeSWITCH's `mod_json_cdr` (`encode=false`: the JSON itself;
/// `encode-values=false`).
///
/// Same address and credentials checks as `/freeswitch/xml`. A CDR is stored once, however
/// often it arrives (FreeSWITCH retries on anything but a 2xx, and a spooled CDR may be
/// imported after it was posted). Answers: 200 stored or already known; 400 a body that is no
/// CDR (FreeSWITCH then keeps it in its error log, `err-log-dir`); 503 with `Retry-After`
/// when the database cannot take it now (FreeSWITCH retries, then spools it to disk).
#[utoipa::path(
    tag = "freeswitch",
    request_body(
        content = String,
        content_type = "application/json",
        description = "The JSON CDR of one leg, as mod_json_cdr posts it (`?uuid=<leg uuid>` in the query)."
    ),
    responses(
        (status = 200, description = "Stored (or stored before)", content_type = "text/plain", body = String),
        (status = 400, description = "Not a CDR", content_type = "text/plain", body = String),
        (status = 401, description = "Missing or wrong basic-auth credentials", content_type = "text/plain", body = String),
        (status = 403, description = "The source address is not in `freeswitch.xml_curl.allowed_networks`", content_type = "text/plain", body = String),
        (status = 413, description = "Larger than 4 MiB", content_type = "text/plain", body = String),
        (status = 503, description = "Cannot store it now; FreeSWITCH retries (`Retry-After`)", content_type = "text/plain", body = String),
    ),
    security(("freeswitch_basic" = []))
)]
#[post("/freeswitch/cdr")]
pub async fn cdr(
    state: web::Data<AppState>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> HttpResponse {
    match admit(&state, &req, &mut payload, MAX_CDR_BYTES).await {
        Ok(body) => store_cdr(&state.cdrs, &body).await,
        Err(refusal) => refusal.response(),
    }
}

/// Stores one CDR body and answers as `/freeswitch/cdr` does.
async fn store_cdr(cdrs: &crate::cdr_writer::CdrWriter, body: &[u8]) -> HttpResponse {
    use actix_web::http::StatusCode;
    use switchboard_domain::history::cdr::LegFacts;
    use switchboard_domain::services::history::Ingested;

    let leg = match LegFacts::from_json(body) {
        Ok(leg) => leg,
        Err(e) => {
            tracing::warn!(error = %e, "a CDR that cannot be read was refused");
            return HttpResponse::BadRequest()
                .content_type("text/plain; charset=utf-8")
                .body(format!("{e}\n"));
        }
    };
    let uuid = leg.uuid;
    match cdrs.ingest(leg).await {
        Ok(Ingested::Stored { .. }) => plain(StatusCode::OK, "stored\n"),
        Ok(Ingested::Duplicate) => plain(StatusCode::OK, "duplicate\n"),
        Err(e) => {
            match e {
                crate::cdr_writer::CdrRefused::Busy => {
                    tracing::warn!(leg = %uuid, "a CDR was turned away: the writer's queue is full; FreeSWITCH will retry")
                }
                crate::cdr_writer::CdrRefused::Failed(e) => {
                    tracing::error!(error = %e, leg = %uuid, "a CDR could not be stored; FreeSWITCH will retry")
                }
            }
            HttpResponse::ServiceUnavailable()
                .insert_header((header::RETRY_AFTER, "5"))
                .content_type("text/plain; charset=utf-8")
                .body("try again later\n")
        }
    }
}
