//! The OpenAPI 3.1 document, built from the same route registration as the server.

use actix_web::App;
use actix_web::dev::ResourceDef;
use actix_web::http::Method;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{ArrayItems, Schema};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi as OpenApiDoc, Ref, RefOr, Required};
use utoipa::{IntoResponses, Modify, OpenApi};
use utoipa_actix_web::AppExt;

use crate::problem::{Problem, ProblemField};
use crate::routes;

/// Static parts of the document; paths and their schemas are collected from the routes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "switchboard",
        description = "Multi-tenant PBX backend for FreeSWITCH. Errors are RFC 9457 problem \
documents (`application/problem+json`) with a stable `code`; lists take `limit` and an opaque \
`cursor` and answer `{\"items\": [...], \"next_cursor\": ...}`.",
        license(name = "AGPL-3.0-or-later", identifier = "AGPL-3.0-or-later")
    ),
    tags(
        (name = "health", description = "Liveness and readiness probes"),
        (name = "auth", description = "Login, token refresh, logout, set-password tokens"),
        (name = "me", description = "The caller's own account, roles and sessions"),
        (name = "domains", description = "Domains (tenants): created and changed by platform administrators"),
        (name = "users", description = "Dashboard users of a Domain: invitations, disabling, password resets, role assignments in a Domain and at platform level"),
        (name = "roles", description = "Built-in and custom roles of a Domain, and the permission catalogue"),
        (name = "api-keys", description = "API keys for machine clients: a role in one Domain or at platform level, an optional expiry, a secret shown once; used as `Authorization: Bearer sk_…`"),
        (name = "extensions", description = "Extensions: calling identities (numbers) with caller IDs, voicemail PIN, forwarding, recording, direct registration"),
        (name = "devices", description = "Devices: desk phones and softphones with a generated SIP identity, `fixed` to an owner Extension or `hotdesk`, in an optional Location; secrets readable with `secrets.read` (audited) and rotatable"),
        (name = "locations", description = "Locations: desks and offices Extensions sign in to, with emergency identity, ring strategy and order, and who may sign in"),
        (name = "gateways", description = "Gateways (trunks to carriers): a Domain's own, or the platform's granted to Domains; password write-only and encrypted at rest; loaded into FreeSWITCH at once; state per node"),
        (name = "outbound-routes", description = "Outbound Routes of a Domain, tried in order: dial patterns, strip/prepend and E.164, toll class, gateways in failover order"),
        (name = "call-flows", description = "Call flows of a Domain: ring groups (Extensions ringing where their people are, or external numbers; simultaneous, sequential, round-robin or longest idle; busy and Do-Not-Disturb members skipped; a destination when nobody answers), IVR menus (a built-in greeting, keys to destinations, direct dialling of Extensions, bounded retries, a final destination; served as dialplan) and time conditions (weekly hours in the Domain's or their own time zone, holidays and one-off dates, a manual override switched here or with `*36<code>` from a phone, whose BLF lamp shows it). Every destination is the one tagged type Numbers use; the graph is checked when saved: nothing missing or of another Domain, no loop without a caller's key press, nothing deleted while in use"),
        (name = "calls", description = "The call history and explaining calls. History: every call recorded once from FreeSWITCH's own CDRs, named by the person (the Extension logged in on the Device at that moment), the Device and the Location; filters, cursor paging newest first, one call with its legs, a streaming CSV export, recordings (`audio/wav`, range requests), and `/me/calls` for one's own; kept per the Domain's `call_history_days`. Explain: every step (context, route, normalised number, toll decision, gateways, caller ID, ring plan) from the same compiled plan that answers FreeSWITCH"),
        (name = "voicemail", description = "Voicemail messages, for an admin (`voicemail.manage`, any Extension's box of the Domain) and for the person (`/me/voicemail`, the boxes of their own Extensions): list with caller, time, length and read state; download the audio (`audio/wav`, range requests); mark read or unread; delete; move to another box of the Domain. The messages live in mod_voicemail's store on the FreeSWITCH node, reached over the Event Socket (503 with `Retry-After` while no node is connected); mod_voicemail updates the phones' message lamps on every change"),
        (name = "numbers", description = "Numbers (DIDs): E.164 numbers unique on the platform, kept in the platform's stock and assigned to Domains by platform administrators, pointed at a destination (an Extension, its voicemail, an external number, a hang-up cause) by the Domain; with a bulk import (JSON or CSV, all or nothing, dry run)"),
        (name = "import", description = "Bulk import of Users (with roles), Locations, Extensions and Devices from JSON or CSV: every row checked first by the single-resource rules, all or nothing, rows creating records or (on_existing=update) updating the ones they match by email, name, number or MAC address, with a per-row report and a dry run"),
        (name = "calling-settings", description = "A Domain's calling settings: hot-desk defaults, emergency numbers, ring timeout, PIN lockout"),
        (name = "presence", description = "Presence: each Extension's user status (available, away, DND — the Extension's own DND switch) and telephone status over exactly the phones that ring for it"),
        (name = "events", description = "The live event stream (Server-Sent Events) of a Domain's committed changes, resumable with `Last-Event-ID`"),
        (name = "hotdesk", description = "Hot-desk sessions (an Extension logged in to a hot-desk Device, with PIN lockout, admin login and auto-logout) and Location sign-in (one Location per Extension), for admins and as self-service under `/me`"),
        (name = "audit", description = "The audit log: every change, who made it, before and after (secrets removed), filterable, newest first"),
        (name = "registrations", description = "Live SIP registrations of a Domain's phones as FreeSWITCH reports them over the Event Socket (node, contact, address, user agent, expiry)"),
        (name = "nodes", description = "The FreeSWITCH nodes and the state of the bridge's Event Socket link to each (platform scope)"),
        (name = "provisioning", description = "Phone provisioning: the catalogue of phone models, tenant templates (minijinja, extending the built-in one of a vendor family, checked when saved), Model Layouts (line keys per model: line, BLF of an Extension that follows the person, speed dial, voicemail, DND, login and logout), the Domain's logged-out layout per model, what an Extension group may choose, the Domain's first-boot credential, a Device's provisioning credential and what a phone would get"),
        (name = "phones", description = "The endpoint phones fetch their configuration from (not for API clients): `GET /provision/<file>` with the file names each vendor asks for, MAC in the name; HTTP digest (or basic over TLS) with the Device's own credential or the Domain's first-boot credential"),
        (name = "freeswitch", description = "FreeSWITCH-facing endpoints (not for API clients): mod_xml_curl directory and dialplan lookups, answered with FreeSWITCH XML from a precompiled in-memory view; mod_json_cdr CDRs (`/freeswitch/cdr`); HTTP basic auth from `freeswitch.xml_curl` and a source-address allow-list"),
    ),
    components(schemas(Problem, ProblemField)),
    modifiers(&Conventions)
)]
pub struct ApiDoc;

/// Adds the security schemes and the problem response every operation can return.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT access token, or an API key sk_…")
                    .description(Some("`Authorization: Bearer <access token or API key>`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "phone_digest",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Digest)
                    .description(Some(
                        "HTTP digest (MD5, qop=auth) or, over TLS, basic: the Device's SIP user name and provisioning password, or the Domain's first-boot credential from an allowed network",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "freeswitch_basic",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "FreeSWITCH's `gateway-credentials` = `freeswitch.xml_curl.username:password`",
                    ))
                    .build(),
            ),
        );
    }
}

/// The error answers every operation shares, each once: [`document`] lists on each operation
/// those its request can produce (see [`shared_errors`]), so no route repeats them and none
/// answers a code its operation does not list.
#[derive(IntoResponses)]
pub enum SharedErrors {
    /// The request cannot be read: a header, path or body that is not well-formed (`bad_request`,
    /// `malformed_json`, `unreadable_body`), or a cross-origin request not allowed
    /// (`cors_refused`)
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// No valid credential (`unauthenticated`, `invalid_token`, `token_expired`)
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The caller lacks the permission in this scope (`forbidden`)
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// No such resource, or not visible to the caller (`not_found`)
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// The body did not arrive within `http.body_timeout_secs` (`body_timeout`)
    #[response(status = 408, content_type = "application/problem+json")]
    BodyTimeout(Problem),
    /// The body is larger than this server accepts (`payload_too_large`)
    #[response(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Problem),
    /// The body is not sent as `application/json` (`unsupported_media_type`)
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Problem),
    /// The body or query is of the wrong shape or breaks a rule; `errors` names each field
    /// (`validation_failed`)
    #[response(status = 422, content_type = "application/problem+json")]
    ValidationFailed(Problem),
}

/// The statuses of [`SharedErrors`] an operation can answer: 400 for any request; 401 and 403
/// with a credential; 404 with a path parameter; 422 with a query; 408, 413, 415 and 422 with
/// a body.
fn shared_errors(op: &Operation) -> Vec<&'static str> {
    let mut statuses = vec!["400"];
    let authenticated = op.security.as_ref().is_some_and(|s| !s.is_empty());
    if authenticated {
        statuses.extend(["401", "403"]);
    }
    let params = op.parameters.as_deref().unwrap_or_default();
    if params
        .iter()
        .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Path))
    {
        statuses.push("404");
    }
    if params
        .iter()
        .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Query))
    {
        statuses.push("422");
    }
    if op.request_body.is_some() {
        statuses.extend(["408", "413", "415", "422"]);
    }
    statuses
}

/// Lists on every operation the shared errors it can answer (keeping a route's own, more
/// specific description of a status), in status order.
fn add_shared_errors(doc: &mut OpenApiDoc) {
    let shared = SharedErrors::responses();
    for (path, item) in doc.paths.paths.iter_mut() {
        // FreeSWITCH's endpoints answer in FreeSWITCH's terms, never with problem documents.
        if path.starts_with("/freeswitch/") {
            continue;
        }
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            for status in shared_errors(op) {
                if let Some(response) = shared.get(status) {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| response.clone());
                }
            }
        }
    }
}

/// Replaces inline copies of a named schema (the items of a generic `PageResponse<T>`) with a
/// reference to it, so a generated client has one class per schema.
fn reference_named_schemas(doc: &mut OpenApiDoc) {
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    let named: Vec<(String, serde_json::Value)> = components
        .schemas
        .iter()
        .filter_map(|(name, schema)| Some((name.clone(), serde_json::to_value(schema).ok()?)))
        .collect();
    for schema in components.schemas.values_mut() {
        let RefOr::T(Schema::Object(object)) = schema else {
            continue;
        };
        for property in object.properties.values_mut() {
            let RefOr::T(Schema::Array(array)) = property else {
                continue;
            };
            let ArrayItems::RefOrSchema(items) = &mut array.items else {
                continue;
            };
            let Ok(inline) = serde_json::to_value(&**items) else {
                continue;
            };
            if let Some((name, _)) = named.iter().find(|(_, value)| *value == inline) {
                **items = RefOr::Ref(Ref::from_schema_name(name.clone()));
            }
        }
    }
}

/// `POST /auth/refresh` takes its token from the body or, when the body is empty, from the
/// refresh cookie: the body is optional, but never `null`.
fn refresh_body_is_optional(doc: &mut OpenApiDoc) {
    let body = doc
        .paths
        .paths
        .get_mut("/api/v1/auth/refresh")
        .and_then(|item| item.post.as_mut())
        .and_then(|op| op.request_body.as_mut());
    if let Some(RefOr::T(body)) = body {
        body.required = Some(Required::False);
    }
}

/// The complete document, exactly as `/api/openapi.json` serves it.
pub fn document() -> OpenApiDoc {
    let (_, mut doc) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(routes::configure)
        .split_for_parts();
    add_shared_errors(&mut doc);
    reference_named_schemas(&mut doc);
    refresh_body_is_optional(&mut doc);
    doc
}

/// The document as pretty JSON with a trailing newline (the committed file's format).
pub fn document_json() -> Result<String, serde_json::Error> {
    let mut json = serde_json::to_string_pretty(&document())?;
    json.push('\n');
    Ok(json)
}

/// Path templates and their methods, to tell "wrong method" (405) from "no such route" (404).
#[derive(Debug)]
pub struct RouteTable(Vec<(ResourceDef, Vec<Method>)>);

impl RouteTable {
    /// Builds the table from the document (plus the documentation routes themselves).
    pub fn from_document(doc: &OpenApiDoc) -> Self {
        let mut routes: Vec<(ResourceDef, Vec<Method>)> = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    (Method::GET, item.get.is_some()),
                    (Method::PUT, item.put.is_some()),
                    (Method::POST, item.post.is_some()),
                    (Method::DELETE, item.delete.is_some()),
                    (Method::PATCH, item.patch.is_some()),
                ]
                .into_iter()
                .filter_map(|(m, present)| present.then_some(m))
                .collect();
                (ResourceDef::new(path.as_str()), methods)
            })
            .collect();
        routes.push((ResourceDef::new("/api/openapi.json"), vec![Method::GET]));
        routes.push((ResourceDef::new("/metrics"), vec![Method::GET]));
        Self(routes)
    }

    /// The allowed methods of the first route matching `path`, if any.
    pub fn allowed(&self, path: &str) -> Option<Vec<Method>> {
        let mut allowed: Vec<Method> = Vec::new();
        let mut matched = false;
        for (def, methods) in &self.0 {
            if def.is_match(path) {
                matched = true;
                for m in methods {
                    if !allowed.contains(m) {
                        allowed.push(m.clone());
                    }
                }
            }
        }
        matched.then_some(allowed)
    }
}
