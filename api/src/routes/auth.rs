//! Logging in and out, and refreshing access tokens.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, post, web};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use switchboard_domain::services::auth::{self, ClientInfo, IssuedSession};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Caller, issue_access_token, request_id};
use crate::extract::{self, Json};
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;

/// The cookie that carries the refresh token for browser clients.
pub const REFRESH_COOKIE: &str = "switchboard_refresh";
/// The only path the refresh cookie is sent to.
pub const REFRESH_PATH: &str = "/api/v1/auth/refresh";

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The user's email.
    #[schema(example = "admin@example.com")]
    pub email: String,
    /// The user's password.
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    /// Browser clients: deliver the refresh token as an `HttpOnly; Secure; SameSite=Strict`
    /// cookie scoped to `/api/v1/auth/refresh` instead of in the body.
    #[serde(default)]
    pub refresh_in_cookie: bool,
}

/// A refresh request. The body may be omitted when the refresh token is in the cookie.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from the previous login or refresh.
    #[schema(value_type = String)]
    pub refresh_token: SecretString,
}

/// Tokens for a session.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// Send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub expires_in: u64,
    /// Single-use: exchange it at `/api/v1/auth/refresh` for new tokens. Absent when it was
    /// set as a cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The session (revocable at `/api/v1/me/sessions/{id}`).
    pub session_id: Uuid,
    /// When the session ends, however often it is refreshed.
    pub session_expires_at: DateTime<Utc>,
}

fn client_info(req: &HttpRequest) -> ClientInfo {
    ClientInfo {
        ip: crate::client_address::client_ip_text(req),
        user_agent: req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

fn refresh_cookie(value: String, max_age_secs: i64) -> Cookie<'static> {
    Cookie::build(REFRESH_COOKIE, value)
        .path(REFRESH_PATH)
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .max_age(CookieDuration::seconds(max_age_secs))
        .finish()
}

fn token_response(
    state: &AppState,
    issued: IssuedSession,
    in_cookie: bool,
) -> ApiResult<HttpResponse> {
    let (access_token, expires_in) = issue_access_token(state, issued.user_id, issued.session_id)?;
    let refresh_token = issued.refresh_token.expose_secret().to_owned();
    let mut response = HttpResponse::Ok();
    response.insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
    if in_cookie {
        let max_age = (issued.expires_at - Utc::now()).num_seconds().max(0);
        response.cookie(refresh_cookie(refresh_token.clone(), max_age));
    }
    Ok(response.json(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in,
        refresh_token: (!in_cookie).then_some(refresh_token),
        session_id: issued.session_id,
        session_expires_at: issued.expires_at,
    }))
}

/// Log in with email and password.
///
/// Answers the same 401 for an unknown email, a wrong password and a disabled account. After
/// repeated failures for an account or from an address, answers 429 with `Retry-After`, even for
/// the right password, until the window passes.
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 401, description = "Wrong credentials", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Malformed email or empty password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed attempts", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api/v1/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<LoginRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let issued = auth::login(
        &state.db,
        &state.auth_policy(),
        &body.email,
        body.password,
        &client_info(&req),
        Utc::now(),
        request_id(&req),
    )
    .await?;
    token_response(&state, issued, body.refresh_in_cookie)
}

/// Exchange a refresh token for new tokens.
///
/// Each refresh token works once. Presenting one that was already used revokes the session
/// (someone else has a copy). Browser clients may omit the body: the cookie set at login is used.
#[utoipa::path(
    tag = "auth",
    request_body(content = RefreshRequest, description = "Omit the body (send none) when using the refresh cookie"),
    responses(
        (status = 200, description = "New tokens", body = TokenResponse),
        (status = 401, description = "Invalid, expired, revoked or reused token", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api/v1/auth/refresh")]
pub async fn refresh(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: extract::RawBody,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let (token, from_cookie) = if body.iter().all(u8::is_ascii_whitespace) {
        match req.cookie(REFRESH_COOKIE) {
            Some(cookie) => (SecretString::from(cookie.value().to_owned()), true),
            None => {
                return Err(ApiError::validation(vec![crate::problem::ProblemField {
                    field: "refresh_token".into(),
                    code: "required".into(),
                    message: "send {\"refresh_token\": …} or the refresh cookie".into(),
                }]));
            }
        }
    } else {
        if !extract::declares_json(&req) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        let parsed: RefreshRequest = extract::json_from_bytes(&body)?;
        (parsed.refresh_token, false)
    };
    let issued = auth::refresh(
        &state.db,
        token.expose_secret(),
        Utc::now(),
        request_id(&req),
    )
    .await?;
    token_response(&state, issued, from_cookie)
}

/// End the current session (its refresh token stops working at once).
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "Not logged in, or the session has ended", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Called with an API key, which has no session (`not_a_session`): revoke the key instead", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api/v1/auth/logout")]
pub async fn logout(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    auth::logout(&state.db, caller.ctx()).await?;
    Ok(HttpResponse::NoContent()
        .cookie(refresh_cookie(String::new(), 0))
        .finish())
}

/// A set-password token and the new password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPasswordRequest {
    /// The token from an invitation or an admin reset.
    #[schema(value_type = String)]
    pub token: SecretString,
    /// The new password (at least 12 characters, not a common one).
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

/// Set a password with an invitation or reset token (no login needed). Activates an invited
/// account and ends every session of the user.
#[utoipa::path(
    tag = "auth",
    request_body = SetPasswordRequest,
    responses(
        (status = 204, description = "Password set"),
        (status = 422, description = "Invalid token or weak password", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api/v1/auth/set-password")]
pub async fn set_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<SetPasswordRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    auth::set_password_with_token(
        &state.db,
        body.token.expose_secret(),
        body.password,
        Utc::now(),
        request_id(&req),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
