//! `GET /provision/{file}`: where phones fetch their configuration (see `crate::provisioning`).
//!
//! Registered with FreeSWITCH's endpoints, outside the API's middleware: a boot storm is
//! thousands of these a second, each answered from memory. Every fetch is logged (target
//! `switchboard::provision`) with the phone's address and user agent, whatever the outcome.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use switchboard_domain::provisioning::files::requested;

use crate::provisioning::{Credential, Fetch, Outcome};
use crate::state::AppState;

/// Whether the request reached the proxy over TLS (a trusted proxy's `X-Forwarded-Proto`, or
/// `Forwarded: proto=https`).
fn over_tls(req: &HttpRequest, state: &AppState) -> bool {
    if req.connection_info().scheme() == "https" && req.app_config().secure() {
        return true;
    }
    let Some(peer) = req.peer_addr().map(|a| a.ip()) else {
        return false;
    };
    if !state.trusted_proxies.iter().any(|n| n.contains(&peer)) {
        return false;
    }
    let headers = req.headers();
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.rsplit(',')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("https")
        });
    let forwarded = headers
        .get(header::FORWARDED)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.to_ascii_lowercase().contains("proto=https"));
    forwarded_proto.or(forwarded).unwrap_or(false)
}

fn text(status: actix_web::http::StatusCode) -> actix_web::HttpResponseBuilder {
    let mut r = HttpResponse::build(status);
    r.content_type("text/plain; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"));
    r
}

/// A phone's configuration file.
///
/// The file names are those the phones ask for: Yealink `<mac>.cfg`; Poly `<mac>.cfg` (the
/// master file) and `<mac>-switchboard.cfg`; Grandstream `cfg<mac>.xml`; Snom `<mac>.xml`;
/// Cisco multiplatform `spa<mac>.xml` — the MAC in any case, with or without `:`, `-` or `.`.
/// A request without credentials gets a digest challenge (and a basic one over TLS). An
/// unknown MAC, a wrong credential and a Device of another Domain are the same 401. An
/// authenticated phone asking for a file its vendor does not use gets 404.
#[utoipa::path(
    tag = "phones",
    params(("file" = String, Path, description = "The file name the phone asks for, with its MAC", example = "805ec0123456.cfg")),
    responses(
        (status = 200, description = "The rendered file (`text/plain` for key=value files, `application/xml` for XML)", content_type = "text/plain", body = String),
        (status = 401, description = "No, or a wrong, credential; or an unknown MAC (a challenge in `WWW-Authenticate`)", content_type = "text/plain", body = String),
        (status = 404, description = "Not a file name phones ask for, or not one this phone's vendor asks for", content_type = "text/plain", body = String),
        (status = 429, description = "Too many failed fetches from this address: try again after `Retry-After` seconds", content_type = "text/plain", body = String),
        (status = 503, description = "The database cannot be read, or the phone's template does not render for it (logged): try again after `Retry-After` seconds", content_type = "text/plain", body = String),
    ),
    security(("phone_digest" = []))
)]
#[get("/provision/{file}")]
pub async fn fetch(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let file = path.into_inner();
    let client = crate::client_address::client_ip(&req);
    let agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let from = client.map_or_else(|| "-".to_owned(), |ip| ip.to_string());
    let Some(wanted) = requested(&file) else {
        tracing::info!(target: "switchboard::provision", file = %file, from = %from, agent = %agent, outcome = "not_a_phone_file");
        return text(actix_web::http::StatusCode::NOT_FOUND).body("not found\n");
    };
    let mac = wanted.mac.clone();
    let tls = over_tls(&req, &state);
    let uri = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_owned(), |p| p.as_str().to_owned());
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let outcome = state
        .provisioner
        .fetch(&Fetch {
            requested: wanted,
            authorization,
            method: req.method().as_str(),
            uri: &uri,
            client,
            tls,
        })
        .await;
    let label = match &outcome {
        Outcome::File {
            credential: Credential::Device,
            ..
        } => "served",
        Outcome::File {
            credential: Credential::FirstBoot,
            ..
        } => "served_first_boot",
        Outcome::Unauthorized { .. } if authorization.is_none() => "challenged",
        Outcome::Unauthorized { .. } => "refused",
        Outcome::NotFound => "not_found",
        Outcome::Throttled { .. } => "throttled",
        Outcome::Unavailable => "unavailable",
        Outcome::Broken => "template_error",
    };
    tracing::info!(target: "switchboard::provision", mac = %mac, file = %file, from = %from, agent = %agent, outcome = label);
    match outcome {
        Outcome::File {
            body,
            content_type,
            device_id,
            ..
        } => {
            state.provisioner.record(device_id, from, agent);
            HttpResponse::Ok()
                .content_type(content_type)
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body(bytes::Bytes::clone(&body))
        }
        Outcome::Unauthorized { stale } => {
            let mut r = text(actix_web::http::StatusCode::UNAUTHORIZED);
            for c in state.provisioner.challenges(stale, tls) {
                r.append_header((header::WWW_AUTHENTICATE, c));
            }
            r.body("authentication required\n")
        }
        Outcome::NotFound => text(actix_web::http::StatusCode::NOT_FOUND).body("not found\n"),
        Outcome::Throttled { retry_after } => text(actix_web::http::StatusCode::TOO_MANY_REQUESTS)
            .insert_header((header::RETRY_AFTER, retry_after.to_string()))
            .body("too many failed attempts\n"),
        Outcome::Unavailable => text(actix_web::http::StatusCode::SERVICE_UNAVAILABLE)
            .insert_header((header::RETRY_AFTER, "5"))
            .body("unavailable\n"),
        // Never a broken file: the phone keeps its configuration and asks again later.
        Outcome::Broken => text(actix_web::http::StatusCode::SERVICE_UNAVAILABLE)
            .insert_header((header::RETRY_AFTER, "300"))
            .body("the phone's template does not render; see the server log\n"),
    }
}
