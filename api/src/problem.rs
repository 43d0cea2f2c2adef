//! Errors as `application/problem+json` (RFC 9457), mapped from the domain error once.
//!
//! Every error body has a stable `code` clients can switch on, a human `detail`, and for
//! validation failures a per-field `errors` list. Unexpected failures are logged with their
//! cause chain and answered with an opaque 500.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use switchboard_domain::{DomainError, FieldError};
use utoipa::ToSchema;

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `urn:switchboard:problem:<code>`.
    #[serde(rename = "type")]
    #[schema(example = "urn:switchboard:problem:validation_failed")]
    pub problem_type: String,
    /// A short summary of the problem type.
    #[schema(example = "Unprocessable Entity")]
    pub title: String,
    /// The HTTP status.
    #[schema(example = 422)]
    pub status: u16,
    /// What went wrong this time, for people.
    #[schema(example = "the request is invalid")]
    pub detail: String,
    /// A stable code for programs.
    #[schema(example = "validation_failed")]
    pub code: String,
    /// Per-field errors, for validation failures.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
}

/// One field's error inside a [`Problem`].
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemField {
    /// Path of the field, e.g. `email` or `items[2].number`.
    pub field: String,
    /// Stable code of the rule that failed.
    pub code: String,
    /// Explanation for people.
    pub message: String,
}

impl From<FieldError> for ProblemField {
    fn from(e: FieldError) -> Self {
        Self {
            field: e.field,
            code: e.code,
            message: e.message,
        }
    }
}

/// The error type of every handler. Boxed, so `Result<T, ApiError>` stays one pointer wide on
/// the success path.
#[derive(Debug)]
pub struct ApiError(Box<ApiErrorInner>);

/// The fields of an [`ApiError`].
#[derive(Debug)]
pub struct ApiErrorInner {
    status: StatusCode,
    code: String,
    detail: String,
    errors: Vec<ProblemField>,
    headers: Vec<(header::HeaderName, String)>,
    /// Kept for the log line of a 500; never sent.
    internal: Option<String>,
}

impl std::ops::Deref for ApiError {
    type Target = ApiErrorInner;
    fn deref(&self) -> &ApiErrorInner {
        &self.0
    }
}

impl std::ops::DerefMut for ApiError {
    fn deref_mut(&mut self) -> &mut ApiErrorInner {
        &mut self.0
    }
}

/// The log form of an error (its `detail` can quote the request): control characters
/// escaped, so a newline or NUL from a path or query cannot forge or cut a log line.
impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: ", self.status.as_u16(), self.code)?;
        for c in self.detail.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

impl ApiError {
    /// A problem with a status, a stable code and a detail.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self(Box::new(ApiErrorInner {
            status,
            code: code.to_owned(),
            detail: detail.into(),
            errors: Vec::new(),
            headers: Vec::new(),
            internal: None,
        }))
    }

    /// Adds a response header (e.g. `Retry-After`, `Allow`).
    pub fn with_header(mut self, name: header::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Adds field errors.
    pub fn with_errors(mut self, errors: Vec<ProblemField>) -> Self {
        self.errors = errors;
        self
    }

    /// 400 with a code.
    pub fn bad_request(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 401.
    pub fn unauthorized(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
            .with_header(header::WWW_AUTHENTICATE, "Bearer")
    }

    /// 404.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 422 with field errors.
    pub fn validation(errors: Vec<ProblemField>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "the request is invalid",
        )
        .with_errors(errors)
    }

    /// 500, logging `cause` but not sending it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an unexpected error occurred; it has been logged",
        );
        e.internal = Some(cause.to_string());
        e
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &str {
        &self.code
    }

    fn problem(&self) -> Problem {
        Problem {
            problem_type: format!("urn:switchboard:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.clone(),
            errors: self.errors.clone(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(cause) = &self.internal {
            tracing::error!(error = %cause, "request failed with an internal error");
        }
        let mut response = HttpResponse::build(self.status);
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        for (name, value) in &self.headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                response.insert_header((name.clone(), value));
            }
        }
        match serde_json::to_vec(&self.problem()) {
            Ok(body) => response.body(body),
            Err(_) => response.finish(),
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::Validation(errors) => {
                Self::validation(errors.into_iter().map(ProblemField::from).collect())
            }
            // "Nobody is logged in" has a code of its own, as the document promises.
            DomainError::NotFound("no_session") => Self::new(
                StatusCode::NOT_FOUND,
                "no_session",
                "nobody is logged in to this Device",
            ),
            DomainError::NotFound(what) => Self::not_found(what),
            DomainError::Conflict {
                code,
                message,
                field,
            } => {
                let errors = field
                    .map(|field| {
                        vec![ProblemField {
                            field,
                            code: code.to_owned(),
                            message: message.clone(),
                        }]
                    })
                    .unwrap_or_default();
                Self::new(StatusCode::CONFLICT, code, message).with_errors(errors)
            }
            DomainError::Forbidden { permission } => Self::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this needs the permission {permission} in this scope"),
            ),
            DomainError::Unauthenticated(detail) => Self::unauthorized("unauthenticated", detail),
            DomainError::RateLimited { retry_after_secs } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many attempts; try again in {retry_after_secs} s"),
            )
            .with_header(header::RETRY_AFTER, retry_after_secs.to_string()),
            DomainError::Locked { retry_after_secs } => Self::new(
                StatusCode::LOCKED,
                "locked",
                format!("locked after too many failed attempts; try again in {retry_after_secs} s"),
            )
            .with_header(header::RETRY_AFTER, retry_after_secs.to_string()),
            DomainError::Database(e) if switchboard_domain::db::is_overloaded(&e) => {
                tracing::warn!(error = %e, "the database is overloaded; answering 503");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    "the server is busy; try again shortly",
                )
                .with_header(header::RETRY_AFTER, "1")
            }
            DomainError::Database(e) => Self::internal(format!("database: {e}")),
            DomainError::Internal(e) => Self::internal(e),
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        DomainError::from(err).into()
    }
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_form_escapes_control_characters() {
        let e = ApiError::bad_request("x", "a\nb\0c\u{1b}[31m");
        assert_eq!(e.to_string(), "400 x: a\\nb\\u{0}c\\u{1b}[31m");
    }
}
