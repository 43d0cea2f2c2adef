//! Request extractors that answer every malformed request with a problem document.
//!
//! actix-web's own `Json` and `Query` report errors as plain text without saying which field
//! was wrong; these read the body or query string and deserialize through
//! `serde_path_to_error`, so a wrong type, a missing field or an unknown field is a 422 that
//! names the field.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use serde::de::DeserializeOwned;

use crate::problem::{ApiError, ProblemField};

/// A JSON request body (`application/json` or any `+json` type).
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    /// The deserialized value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

fn is_json(req: &HttpRequest) -> bool {
    match req.mime_type() {
        Ok(Some(mime)) => {
            mime.type_() == "application"
                && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"))
        }
        _ => false,
    }
}

/// Maps a body-reading failure (too large, broken) to a problem.
pub fn payload_error(err: actix_web::Error) -> ApiError {
    if let Some(PayloadError::Overflow) = err.as_error::<PayloadError>() {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than this server accepts",
        );
    }
    if err.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than this server accepts",
        );
    }
    ApiError::bad_request(
        "unreadable_body",
        format!("the request body could not be read: {err}"),
    )
}

/// Turns a deserialization failure into a 400 (not JSON at all) or 422 (JSON of the wrong
/// shape, naming the field).
fn json_error(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    match inner.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            ApiError::bad_request(
                "malformed_json",
                format!("the request body is not valid JSON: {inner}"),
            )
        }
        serde_json::error::Category::Io => {
            ApiError::bad_request("unreadable_body", inner.to_string())
        }
        serde_json::error::Category::Data => {
            ApiError::validation(vec![data_error(&path, &inner.to_string())])
        }
    }
}

/// Builds a field error from serde's message, e.g. "unknown field `x`, expected …".
fn data_error(path: &str, message: &str) -> ProblemField {
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_owned();
    let parent = if path == "." {
        String::new()
    } else {
        path.to_owned()
    };
    let join = |name: &str| {
        if parent.is_empty() {
            name.to_owned()
        } else {
            format!("{parent}.{name}")
        }
    };
    let quoted = message.split('`').nth(1).unwrap_or_default();
    if message.starts_with("unknown field") {
        // serde_path_to_error's path already ends with the unknown field's name.
        let field = if parent.is_empty() {
            quoted.to_owned()
        } else {
            parent
        };
        ProblemField {
            field,
            code: "unknown_field".into(),
            message,
        }
    } else if message.starts_with("missing field") {
        ProblemField {
            field: join(quoted),
            code: "required".into(),
            message,
        }
    } else {
        let field = if parent.is_empty() {
            "body".to_owned()
        } else {
            parent
        };
        ProblemField {
            field,
            code: "invalid_type".into(),
            message,
        }
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(req);
        let body = Bytes::from_request(req, payload);
        Box::pin(async move {
            if !json {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "send the body as application/json",
                ));
            }
            let body = body.await.map_err(payload_error)?;
            json_from_bytes(&body).map(Json)
        })
    }
}

/// Parses a JSON body that was read as bytes (for endpoints whose body is optional).
pub fn json_from_bytes<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(json_error)?;
    de.end().map_err(|e| {
        ApiError::bad_request(
            "malformed_json",
            format!("the request body is not valid JSON: {e}"),
        )
    })?;
    Ok(value)
}

/// True when the request declares a JSON body.
pub fn declares_json(req: &HttpRequest) -> bool {
    is_json(req)
}

/// The raw body, size-limited like [`Json`], with problem+json errors.
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl FromRequest for RawBody {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = Bytes::from_request(req, payload);
        Box::pin(async move { body.await.map(RawBody).map_err(payload_error) })
    }
}

/// Query parameters, with field-level errors.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T> Query<T> {
    /// The deserialized value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let pairs = url::form_urlencoded::parse(req.query_string().as_bytes());
        let de = serde_urlencoded::Deserializer::new(pairs);
        std::future::ready(
            serde_path_to_error::deserialize(de)
                .map(Query)
                .map_err(|err| {
                    let path = err.path().to_string();
                    let message = err.into_inner().to_string();
                    let mut field = data_error(&path, &message);
                    if field.field == "body" {
                        field.field = "query".to_owned();
                    }
                    ApiError::validation(vec![field])
                }),
        )
    }
}

/// Path segments that do not parse (e.g. an id that is not a UUID) name nothing: 404.
pub fn path_error(err: actix_web::error::PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no such resource ({err})"),
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_become_field_errors() {
        let f = data_error(
            ".",
            "unknown field `colour`, expected one of `name` at line 1 column 9",
        );
        assert_eq!(
            (f.field.as_str(), f.code.as_str()),
            ("colour", "unknown_field")
        );
        let f = data_error("owner.colour", "unknown field `colour`, expected `id`");
        assert_eq!(
            (f.field.as_str(), f.code.as_str()),
            ("owner.colour", "unknown_field")
        );
        let f = data_error("owner", "missing field `id`");
        assert_eq!(
            (f.field.as_str(), f.code.as_str()),
            ("owner.id", "required")
        );
        let f = data_error("limit", "invalid digit found in string");
        assert_eq!(
            (f.field.as_str(), f.code.as_str()),
            ("limit", "invalid_type")
        );
    }
}
