//! Who is calling: access tokens (JWT) and API keys → an authenticated [`Caller`].
//!
//! The extractor only proves identity; each handler then asks `switchboard_domain`'s named
//! authorization functions whether that identity may act.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use switchboard_domain::services::Context;
use switchboard_domain::services::auth::{self, API_KEY_PREFIX};
use tracing_actix_web::RequestId;
use uuid::Uuid;

use crate::extract::AuthGate;
use crate::problem::ApiError;
use crate::state::AppState;

/// The claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    /// The session id; checked against the database on every request.
    pub sid: Uuid,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// Always `access`.
    pub typ: String,
}

/// Signs an access token for a session; returns it with its lifetime in seconds.
pub fn issue_access_token(
    state: &AppState,
    user_id: Uuid,
    session_id: Uuid,
) -> Result<(String, u64), ApiError> {
    let ttl = state.config.auth.access_token_ttl_secs;
    let now = Utc::now().timestamp();
    let claims = Claims {
        sub: user_id,
        sid: session_id,
        iat: now,
        exp: now + ttl as i64,
        typ: "access".to_owned(),
    };
    let key = EncodingKey::from_secret(state.jwt_secret.expose_secret().as_bytes());
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)
        .map_err(ApiError::internal)?;
    Ok((token, ttl))
}

fn decode_access_token(state: &AppState, token: &str) -> Result<Claims, ApiError> {
    let key = DecodingKey::from_secret(state.jwt_secret.expose_secret().as_bytes());
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 5;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let data =
        jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                ApiError::unauthorized("token_expired", "the access token has expired; refresh it")
            }
            _ => ApiError::unauthorized("invalid_token", "the access token is not valid"),
        })?;
    if data.claims.typ != "access" {
        return Err(ApiError::unauthorized(
            "invalid_token",
            "the access token is not valid",
        ));
    }
    Ok(data.claims)
}

/// The request id tracing-actix-web assigned, as text.
pub fn request_id(req: &HttpRequest) -> Option<String> {
    req.extensions().get::<RequestId>().map(ToString::to_string)
}

/// An authenticated caller, with the context every use case takes, and when the credential it
/// presented expires (an access token's `exp`; `None` for API keys, whose expiry is in the
/// database).
#[derive(Debug)]
pub struct Caller(pub Context, pub Option<DateTime<Utc>>);

impl Caller {
    /// The use-case context (actor, now, request id).
    pub fn ctx(&self) -> &Context {
        &self.0
    }

    /// When the presented credential expires, when it says so itself.
    pub fn credential_expires_at(&self) -> Option<DateTime<Utc>> {
        self.1
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().map(str::to_owned));
        let request_id = request_id(req);
        let authenticate = async move {
            let state = state.ok_or_else(|| ApiError::internal("application state missing"))?;
            let token = match authorization {
                None => {
                    return Err(ApiError::unauthorized(
                        "unauthenticated",
                        "send Authorization: Bearer <access token or API key>",
                    ));
                }
                Some(Err(_)) => {
                    return Err(ApiError::unauthorized(
                        "invalid_token",
                        "the Authorization header is not readable",
                    ));
                }
                Some(Ok(value)) => match value.split_once(' ') {
                    Some((scheme, token))
                        if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
                    {
                        token.trim().to_owned()
                    }
                    _ => {
                        return Err(ApiError::unauthorized(
                            "invalid_token",
                            "use the Bearer scheme: Authorization: Bearer <token>",
                        ));
                    }
                },
            };
            let now = Utc::now();
            let (actor, expires_at) = if token.starts_with(API_KEY_PREFIX) {
                let actor =
                    auth::authenticate_api_key(&state.db, &state.api_keys, &token, now).await?;
                (actor, None)
            } else {
                let claims = decode_access_token(&state, &token)?;
                let actor =
                    auth::authenticate_session(&state.db, claims.sub, claims.sid, now).await?;
                (actor, DateTime::from_timestamp(claims.exp, 0))
            };
            Ok(Caller(
                Context {
                    actor,
                    now,
                    request_id,
                },
                expires_at,
            ))
        };
        // The lookup runs as a task of its own: when another extractor refuses the request
        // meanwhile, dropping this future must not cancel a query holding a pooled connection
        // (a cancelled query costs the connection). Body and query wait for its outcome.
        let gate = AuthGate::install(req);
        let lookup = actix_web::rt::spawn(async move {
            let caller = authenticate.await;
            gate.settle(caller.is_ok());
            caller
        });
        Box::pin(async move {
            lookup
                .await
                .map_err(|e| ApiError::internal(format!("authentication task: {e}")))?
        })
    }
}
