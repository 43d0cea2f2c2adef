//! Request extractors that answer every malformed request with a problem document.
//!
//! actix-web's own `Json` and `Query` report errors as plain text without saying which field
//! was wrong; these read the body or query string and deserialize through
//! `serde_path_to_error`, so a wrong type, a missing field or an unknown field is a 422 that
//! names the field.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::problem::{ApiError, ProblemField};

/// How long a request body may take to arrive (`http.body_timeout_secs`), as app data.
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub Duration);

/// Used when the app data is missing (unit tests of single handlers).
const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads a body within the request's body timeout: a client that announces a body and stalls
/// gets 408 and its connection closed instead of holding it.
pub async fn within_body_timeout<T>(
    req: &HttpRequest,
    read: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let limit = req
        .app_data::<BodyTimeout>()
        .map_or(DEFAULT_BODY_TIMEOUT, |t| t.0);
    match actix_web::rt::time::timeout(limit, read).await {
        Ok(result) => result,
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the request body did not arrive within {} s",
                limit.as_secs()
            ),
        )
        .with_header(header::CONNECTION, "close")),
    }
}

/// The outcome of a request's authentication, which its body and query extractors wait for.
///
/// actix-web polls a handler's extractors side by side and answers the first error: without
/// the gate a body refused at once (wrong type, 415) answered before the credential was
/// checked, and a refused credential's body was read for nothing.
#[derive(Debug, Clone)]
pub struct AuthGate(watch::Receiver<Option<bool>>);

/// The authentication's side of an [`AuthGate`]; dropping it without [`settle`] counts as a
/// refusal.
///
/// [`settle`]: AuthGateSender::settle
#[derive(Debug)]
pub struct AuthGateSender(watch::Sender<Option<bool>>);

impl AuthGateSender {
    /// Opens the gate when `authenticated`; otherwise it stays closed.
    pub fn settle(self, authenticated: bool) {
        let _ = self.0.send(Some(authenticated));
    }
}

impl AuthGate {
    /// Puts a gate on `req` (done by the credential extractor) and returns its sender.
    pub fn install(req: &HttpRequest) -> AuthGateSender {
        let (sender, receiver) = watch::channel(None);
        req.extensions_mut().insert(AuthGate(receiver));
        AuthGateSender(sender)
    }

    /// Waits until the request's credential is accepted. On a refusal this never resolves:
    /// the credential extractor answers the refusal, and nothing else is read.
    pub async fn pass(req: &HttpRequest) {
        let gate = req.extensions().get::<AuthGate>().cloned();
        let Some(AuthGate(mut receiver)) = gate else {
            return; // an endpoint without credentials
        };
        let accepted = match receiver.wait_for(Option::is_some).await {
            Ok(outcome) => *outcome == Some(true),
            Err(_) => false,
        };
        if !accepted {
            std::future::pending::<()>().await;
        }
    }
}

/// A JSON request body (`application/json` or any `+json` type): an object.
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

fn payload_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the request body is larger than this server accepts",
    )
}

/// Maps a body-reading failure (too large, broken) to a problem.
pub fn payload_error(err: actix_web::Error) -> ApiError {
    if let Some(PayloadError::Overflow) = err.as_error::<PayloadError>() {
        return payload_too_large();
    }
    if err.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
        return payload_too_large();
    }
    ApiError::bad_request(
        "unreadable_body",
        "the request body could not be read: it ended early or its encoding is broken",
    )
}

/// The 400 of a body that is not JSON, saying where (not serde's words).
fn malformed_json(err: &serde_json::Error) -> ApiError {
    ApiError::bad_request(
        "malformed_json",
        format!(
            "the request body is not valid JSON (line {}, column {})",
            err.line(),
            err.column()
        ),
    )
}

/// Turns a deserialization failure into a 400 (not JSON at all) or 422 (JSON of the wrong
/// shape, naming the field).
fn json_error(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    match inner.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            malformed_json(&inner)
        }
        serde_json::error::Category::Io => {
            ApiError::bad_request("unreadable_body", "the request body could not be read")
        }
        serde_json::error::Category::Data => {
            ApiError::validation(vec![data_error(&path, &inner.to_string())])
        }
    }
}

/// Says serde's and the standard parsers' messages in the API's terms, without Rust type
/// names (`expected struct LoginRequest`, `expected u32`, `invalid digit found in string`).
fn plain_message(message: &str) -> String {
    const KNOWN: [(&str, &str); 9] = [
        ("invalid digit found in string", "expected an integer"),
        (
            "cannot parse integer from empty string",
            "expected an integer",
        ),
        (
            "number too large to fit in target type",
            "the number is too large",
        ),
        (
            "number too small to fit in target type",
            "the number is too small",
        ),
        (
            "provided string was not `true` or `false`",
            "expected `true` or `false`",
        ),
        ("invalid float literal", "expected a number"),
        (
            "premature end of input",
            "expected a date and time (RFC 3339)",
        ),
        (
            "input contains invalid characters",
            "expected a date and time (RFC 3339)",
        ),
        (
            "input is out of range",
            "expected a date and time (RFC 3339)",
        ),
    ];
    if let Some((_, plain)) = KNOWN.iter().find(|(rust, _)| message.starts_with(rust)) {
        return (*plain).to_owned();
    }
    if message.starts_with("UUID parsing failed") || message.contains("expected a UUID") {
        return "expected a UUID".to_owned();
    }
    let Some((head, expected)) = message.split_once(", expected ") else {
        return message.to_owned();
    };
    let expected = match expected.trim() {
        e if e.starts_with("struct ") || e.starts_with("map") => "an object",
        e if e.starts_with("tuple struct ") || e.starts_with("newtype struct ") => "a value",
        e if e.starts_with("enum ") => "one of the documented values",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a non-negative integer",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer",
        "f32" | "f64" => "a number",
        "option" => "a value or null",
        e => e,
    };
    format!("{head}, expected {expected}")
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
            message: plain_message(&message),
        }
    }
}

/// The field error of text holding NUL (U+0000), which no text column can store.
fn nul_error(field: String) -> ProblemField {
    ProblemField {
        field,
        code: "nul_character".into(),
        message: "text may not contain the NUL character (U+0000)".into(),
    }
}

/// True when a JSON text escapes a NUL (`\u0000`; JSON cannot hold a raw one in a string).
pub fn has_escaped_nul(json: &[u8]) -> bool {
    let mut i = 0;
    while let Some(offset) = json[i..].iter().position(|&b| b == b'\\') {
        let at = i + offset;
        match json.get(at + 1) {
            Some(b'u') if json.get(at + 2..at + 6) == Some(b"0000".as_slice()) => return true,
            Some(_) => i = at + 2,
            None => return false,
        }
    }
    false
}

/// The path of the first string (or key) holding NUL, like serde_path_to_error's.
fn nul_path(value: &serde_json::Value, path: &str) -> Option<String> {
    let join = |name: &str| {
        if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    match value {
        serde_json::Value::String(s) if s.contains('\0') => Some(if path.is_empty() {
            "body".to_owned()
        } else {
            path.to_owned()
        }),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_path(item, &format!("{path}[{i}]"))),
        serde_json::Value::Object(map) => map.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                Some(join(&key.replace('\0', "\\u0000")))
            } else {
                nul_path(item, &join(key))
            }
        }),
        _ => None,
    }
}

/// Refuses JSON text that holds NUL, naming the field (422 `nul_character`).
pub fn refuse_nul_in_json(json: &[u8]) -> Result<(), ApiError> {
    if !has_escaped_nul(json) {
        return Ok(());
    }
    match serde_json::from_slice::<serde_json::Value>(json) {
        Ok(value) => match nul_path(&value, "") {
            Some(field) => Err(ApiError::validation(vec![nul_error(field)])),
            None => Ok(()),
        },
        // Not JSON: the parser's 400 follows.
        Err(_) => Ok(()),
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = Bytes::from_request(&req, payload);
        Box::pin(async move {
            AuthGate::pass(&req).await;
            if !is_json(&req) {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "send the body as application/json",
                ));
            }
            let body =
                within_body_timeout(&req, async { body.await.map_err(payload_error) }).await?;
            json_from_bytes(&body).map(Json)
        })
    }
}

/// Parses a JSON body that was read as bytes: an object (serde would take an array of the
/// fields' values too), without NUL in any text.
pub fn json_from_bytes<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|&b| b != b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                Err(e) => malformed_json(&e),
                Ok(_) => ApiError::validation(vec![ProblemField {
                    field: "body".into(),
                    code: "invalid_type".into(),
                    message: "expected a JSON object".into(),
                }]),
            },
        );
    }
    refuse_nul_in_json(body)?;
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(json_error)?;
    de.end().map_err(|e| malformed_json(&e))?;
    Ok(value)
}

/// True when the request declares a JSON body.
pub fn declares_json(req: &HttpRequest) -> bool {
    is_json(req)
}

/// The raw body, size- and time-limited like [`Json`], with problem+json errors.
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl FromRequest for RawBody {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = Bytes::from_request(&req, payload);
        Box::pin(async move {
            AuthGate::pass(&req).await;
            within_body_timeout(&req, async { body.await.map_err(payload_error) })
                .await
                .map(RawBody)
        })
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

/// Parses a query string: NUL in a name or value is a 422 naming it, like any bad value.
fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let pairs = url::form_urlencoded::parse(query.as_bytes());
    if let Some((name, _)) = pairs
        .clone()
        .find(|(name, value)| name.contains('\0') || value.contains('\0'))
    {
        return Err(ApiError::validation(vec![nul_error(
            name.replace('\0', "\\u0000"),
        )]));
    }
    let de = serde_urlencoded::Deserializer::new(pairs);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let message = err.into_inner().to_string();
        let mut field = data_error(&path, &message);
        if field.field == "body" {
            field.field = "query".to_owned();
        }
        ApiError::validation(vec![field])
    })
}

impl<T: DeserializeOwned + 'static> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            AuthGate::pass(&req).await;
            parse_query(req.query_string()).map(Query)
        })
    }
}

/// Path segments that do not parse (e.g. an id that is not a UUID) name nothing: 404.
pub fn path_error(_: actix_web::error::PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such resource").into()
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
            (f.field.as_str(), f.code.as_str(), f.message.as_str()),
            ("limit", "invalid_type", "expected an integer")
        );
    }

    #[test]
    fn rust_type_names_do_not_reach_messages() {
        for (rust, plain) in [
            (
                "invalid type: sequence, expected struct LoginRequest",
                "invalid type: sequence, expected an object",
            ),
            (
                "invalid value: integer `-1`, expected u32",
                "invalid value: integer `-1`, expected a non-negative integer",
            ),
            (
                "invalid type: string \"x\", expected i64",
                "invalid type: string \"x\", expected an integer",
            ),
        ] {
            assert_eq!(data_error("x", rust).message, plain);
        }
    }

    #[test]
    fn escaped_nul_is_found_only_as_an_escape() {
        assert!(has_escaped_nul(br#"{"q": "a\u0000b"}"#));
        assert!(!has_escaped_nul(br#"{"q": "a\\u0000b"}"#));
        let err = refuse_nul_in_json(br#"{"a": {"b": ["ok", "x\u0000"]}}"#).err();
        assert_eq!(
            err.map(|e| e.code().to_owned()),
            Some("validation_failed".to_owned())
        );
    }
}
