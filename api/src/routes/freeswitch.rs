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
    use actix_web::http::StatusCode;

    let config = &state.config.freeswitch.xml_curl;
    if !address_allowed(&state, req.peer_addr().map(|a| a.ip())) {
        tracing::warn!(peer = ?req.peer_addr(), "mod_xml_curl request from an address that is not allowed");
        state.directory.refused("address");
        return plain(StatusCode::FORBIDDEN, "address not allowed\n");
    }
    if !credentials_ok(config, &req) {
        state.directory.refused("credentials");
        return HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, format!("Basic realm=\"{REALM}\"")))
            .content_type("text/plain; charset=utf-8")
            .body("credentials required\n");
    }

    let limit = config.max_body_bytes;
    let mut body = web::BytesMut::with_capacity(8192);
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else {
            state.directory.refused("unreadable");
            return plain(StatusCode::BAD_REQUEST, "unreadable body\n");
        };
        if body.len() + chunk.len() > limit {
            state.directory.refused("too_large");
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n");
        }
        body.extend_from_slice(&chunk);
    }

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
