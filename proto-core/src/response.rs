//! Responses as data: an HTTP status, headers and body become a decoded
//! value or an [`Error`] that keeps the server's whole `Status`.
//!
//! This module owns the classification of responses (client-go's
//! `transformResponse` and `newUnstructuredResponseError`): a `Status` body
//! is kept as sent; a body that is not a `Status` — the `text/plain`
//! `Too many requests, please try again later.` of priority-and-fairness, an
//! HTML page from a proxy — becomes a synthesized `Status` with the reason
//! the HTTP code implies and the body, cut to 2 KiB, as its cause. It owns
//! the `Retry-After` header (seconds, or an HTTP-date that needs the caller's
//! clock) and the predicates client-go's `apierrors` offers. It decodes JSON
//! success bodies and reads `Status` error bodies in JSON and protobuf
//! ([`protobuf_status`]); other protobuf and CBOR bodies are the other
//! codecs' (they hand a decoded `Status` to [`ApiError::from_status`]). It does not retry: the
//! retry policy reads [`ApiError::retry_after`].
//!
//! ```
//! use http::{HeaderMap, Method, StatusCode};
//! use windlass_proto::response;
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("content-type", "text/plain; charset=utf-8".parse().unwrap());
//! headers.insert("retry-after", "3".parse().unwrap());
//! let body = b"Too many requests, please try again later.\n";
//! let err = response::api_error(&Method::GET, StatusCode::TOO_MANY_REQUESTS, &headers, body).unwrap();
//! assert!(err.is_too_many_requests());
//! assert_eq!(err.reason(), "TooManyRequests");
//! assert_eq!(err.retry_after(), Some(std::time::Duration::from_secs(3)));
//! ```

use std::fmt;
use std::time::{Duration, SystemTime};

use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, Method, StatusCode};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusCause, StatusDetails};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::codec::json::{self, JsonError};
use crate::codec::{Format, PROTOBUF_MAGIC};
use crate::list::ObjectList;
use crate::request::negotiation::{self, ContentTypeError};

pub mod protobuf_status;

/// How much of a body that is not a `Status` an error keeps (client-go's
/// `maxUnstructuredResponseTextBytes`).
pub const MAX_UNSTRUCTURED_BODY: usize = 2048;

/// `details.causes[].reason` of the too-large-resourceVersion error.
pub const CAUSE_RESOURCE_VERSION_TOO_LARGE: &str = "ResourceVersionTooLarge";
/// `details.causes[].reason` of a synthesized `Status`: the body it was made from.
pub const CAUSE_UNEXPECTED_SERVER_RESPONSE: &str = "UnexpectedServerResponse";

/// Reasons the API server defines; a `Status` with any other (or none) is
/// judged by its code alone (client-go's `knownReasons`).
const KNOWN_REASONS: &[&str] = &[
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "AlreadyExists",
    "Conflict",
    "Gone",
    "Invalid",
    "ServerTimeout",
    "StorageReadError",
    "Timeout",
    "TooManyRequests",
    "BadRequest",
    "MethodNotAllowed",
    "NotAcceptable",
    "RequestEntityTooLarge",
    "UnsupportedMediaType",
    "InternalError",
    "Expired",
    "ServiceUnavailable",
];

/// A response that did not give the caller what it asked for.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server said no: a `Status` (sent or synthesized) with its HTTP head.
    #[error(transparent)]
    Api(Box<ApiError>),
    /// A success response whose body did not decode.
    #[error("{status} response: {source}")]
    Decode {
        /// The HTTP status.
        status: StatusCode,
        /// The decoder's error.
        #[source]
        source: JsonError,
    },
    /// A success response in an encoding this function does not decode.
    #[error("{status} response: {source}")]
    ContentType {
        /// The HTTP status.
        status: StatusCode,
        /// What the `Content-Type` was.
        #[source]
        source: ContentTypeError,
    },
    /// A success response in protobuf or CBOR, which the JSON path does not decode.
    #[error("{status} response is {format:?}; decode it with that codec")]
    NotJson {
        /// The HTTP status.
        status: StatusCode,
        /// The body's encoding.
        format: Format,
    },
}

impl Error {
    /// The API error, if this is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Api(e) => Some(e),
            _ => None,
        }
    }

    /// See [`ApiError::is_not_found`].
    pub fn is_not_found(&self) -> bool {
        self.api().is_some_and(ApiError::is_not_found)
    }

    /// See [`ApiError::is_conflict`].
    pub fn is_conflict(&self) -> bool {
        self.api().is_some_and(ApiError::is_conflict)
    }

    /// See [`ApiError::is_already_exists`].
    pub fn is_already_exists(&self) -> bool {
        self.api().is_some_and(ApiError::is_already_exists)
    }

    /// See [`ApiError::is_expired`].
    pub fn is_expired(&self) -> bool {
        self.api().is_some_and(ApiError::is_expired)
    }

    /// See [`ApiError::is_too_large_resource_version`].
    pub fn is_too_large_resource_version(&self) -> bool {
        self.api()
            .is_some_and(ApiError::is_too_large_resource_version)
    }

    /// See [`ApiError::is_too_many_requests`].
    pub fn is_too_many_requests(&self) -> bool {
        self.api().is_some_and(ApiError::is_too_many_requests)
    }

    /// See [`ApiError::retry_after`].
    pub fn retry_after(&self) -> Option<Duration> {
        self.api().and_then(ApiError::retry_after)
    }
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        Self::Api(Box::new(e))
    }
}

/// The `Retry-After` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: <seconds>` — what the API server sends.
    Delay(Duration),
    /// `Retry-After: <IMF-fixdate>` — a proxy's form; only the caller's clock
    /// turns it into a delay ([`RetryAfter::delay_from`]).
    At(SystemTime),
}

impl RetryAfter {
    /// Parses a header value: non-negative integer seconds, or an IMF-fixdate
    /// (`Sun, 06 Nov 1994 08:49:37 GMT`). Anything else is `None`.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            return value
                .parse()
                .ok()
                .map(|s| Self::Delay(Duration::from_secs(s)));
        }
        parse_imf_fixdate(value).map(Self::At)
    }

    /// The delay from `now` (zero for a date already past).
    pub fn delay_from(self, now: SystemTime) -> Duration {
        match self {
            Self::Delay(d) => d,
            Self::At(at) => at.duration_since(now).unwrap_or(Duration::ZERO),
        }
    }
}

/// An error the API server returned: its `Status`, kept whole, and the HTTP
/// head it came with.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    status: Status,
    http_status: StatusCode,
    retry_after: Option<RetryAfter>,
    synthesized: bool,
}

impl ApiError {
    /// An error from a `Status` another codec decoded (protobuf, CBOR) or a
    /// watch `ERROR` event carried (pass the event's code as `http_status`).
    pub fn from_status(status: Status, http_status: StatusCode, headers: &HeaderMap) -> Self {
        Self {
            status,
            http_status,
            retry_after: retry_after_header(headers),
            synthesized: false,
        }
    }

    /// The `Status`: as the server sent it, or synthesized from a body that
    /// was not one (see [`ApiError::is_synthesized`]).
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// The `Status`, owned.
    pub fn into_status(self) -> Status {
        self.status
    }

    /// A response head and JSON `Status` body that say the same thing, for a
    /// machine that judges responses itself (the reflector) when a client
    /// already read and judged the original. `Retry-After` in seconds is kept.
    pub fn to_response(&self) -> (http::response::Parts, bytes::Bytes) {
        let mut builder = http::Response::builder()
            .status(self.http_status)
            .header(http::header::CONTENT_TYPE, "application/json");
        if let Some(RetryAfter::Delay(d)) = self.retry_after {
            builder = builder.header(http::header::RETRY_AFTER, d.as_secs());
        }
        let body = serde_json::to_vec(&self.status).unwrap_or_default();
        let (head, ()) = builder
            .body(())
            .expect("a status code and two valid headers")
            .into_parts();
        (head, body.into())
    }

    /// The HTTP status of the response.
    pub fn http_status(&self) -> StatusCode {
        self.http_status
    }

    /// Whether the server sent no `Status` and this one was made from the HTTP
    /// code and the body (cut to [`MAX_UNSTRUCTURED_BODY`]).
    pub fn is_synthesized(&self) -> bool {
        self.synthesized
    }

    /// The `Retry-After` header, if it parsed.
    pub fn retry_after_header(&self) -> Option<RetryAfter> {
        self.retry_after
    }

    /// `Status.code`, or the HTTP status when the `Status` has none.
    pub fn code(&self) -> u16 {
        self.status
            .code
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| *c != 0)
            .unwrap_or(self.http_status.as_u16())
    }

    /// `Status.reason` (empty when the server gave none).
    pub fn reason(&self) -> &str {
        self.status.reason.as_deref().unwrap_or("")
    }

    /// `Status.message`.
    pub fn message(&self) -> &str {
        self.status.message.as_deref().unwrap_or("")
    }

    /// `details.causes`.
    pub fn causes(&self) -> &[StatusCause] {
        self.status
            .details
            .as_ref()
            .and_then(|d| d.causes.as_deref())
            .unwrap_or(&[])
    }

    /// How long the server asked us to wait: the `Retry-After` header in
    /// seconds, else `details.retryAfterSeconds` when positive. An HTTP-date
    /// header needs a clock: see [`ApiError::retry_after_header`].
    pub fn retry_after(&self) -> Option<Duration> {
        if let Some(RetryAfter::Delay(d)) = self.retry_after {
            return Some(d);
        }
        self.status
            .details
            .as_ref()
            .and_then(|d| d.retry_after_seconds)
            .and_then(|s| u64::try_from(s).ok())
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
    }

    /// Whether client-go would wait and retry this response, and for how long:
    /// a 429 or any 5xx **with** a `Retry-After` header in seconds
    /// (`rest/with_retry.go` `checkWait`). A 5xx without the header is not
    /// retried this way; `details.retryAfterSeconds` alone does not count.
    pub fn retry_wait(&self) -> Option<Duration> {
        let code = self.http_status.as_u16();
        if code != 429 && code < 500 {
            return None;
        }
        match self.retry_after {
            Some(RetryAfter::Delay(d)) => Some(d),
            _ => None,
        }
    }

    /// The reason is `reason`, or the reason is not a known one and the code is `code`.
    fn is_reason_or_code(&self, reason: &str, code: u16) -> bool {
        let own = self.reason();
        own == reason || (!KNOWN_REASONS.contains(&own) && self.code() == code)
    }

    /// 404 NotFound.
    pub fn is_not_found(&self) -> bool {
        self.is_reason_or_code("NotFound", 404)
    }

    /// 409 Conflict: a stale resourceVersion on update, or an apply conflict.
    /// An AlreadyExists 409 is not a conflict.
    pub fn is_conflict(&self) -> bool {
        self.is_reason_or_code("Conflict", 409)
    }

    /// 409 AlreadyExists on create (by reason only, as client-go: 409 alone is ambiguous).
    pub fn is_already_exists(&self) -> bool {
        self.reason() == "AlreadyExists"
    }

    /// 410: reason `Expired` or `Gone`, or any 410 — the resourceVersion or
    /// continue token is too old; relist.
    pub fn is_expired(&self) -> bool {
        matches!(self.reason(), "Expired" | "Gone") || self.code() == 410
    }

    /// The same as [`ApiError::is_expired`]: old servers said `Gone`.
    pub fn is_gone(&self) -> bool {
        self.is_expired()
    }

    /// 422 Invalid: the object failed validation (see [`ApiError::causes`]).
    pub fn is_invalid(&self) -> bool {
        self.is_reason_or_code("Invalid", 422)
    }

    /// 400 BadRequest.
    pub fn is_bad_request(&self) -> bool {
        self.is_reason_or_code("BadRequest", 400)
    }

    /// 401 Unauthorized.
    pub fn is_unauthorized(&self) -> bool {
        self.is_reason_or_code("Unauthorized", 401)
    }

    /// 403 Forbidden.
    pub fn is_forbidden(&self) -> bool {
        self.is_reason_or_code("Forbidden", 403)
    }

    /// 415 UnsupportedMediaType: a CBOR or protobuf body the server does not take.
    pub fn is_unsupported_media_type(&self) -> bool {
        self.is_reason_or_code("UnsupportedMediaType", 415)
    }

    /// 406 NotAcceptable: no representation the `Accept` allows (e.g. CBOR
    /// asked of a server without it).
    pub fn is_not_acceptable(&self) -> bool {
        self.is_reason_or_code("NotAcceptable", 406)
    }

    /// 504 Timeout.
    pub fn is_timeout(&self) -> bool {
        self.is_reason_or_code("Timeout", 504)
    }

    /// 500 ServerTimeout.
    pub fn is_server_timeout(&self) -> bool {
        self.reason() == "ServerTimeout"
    }

    /// 500 InternalError.
    pub fn is_internal_error(&self) -> bool {
        self.is_reason_or_code("InternalError", 500)
    }

    /// 503 ServiceUnavailable.
    pub fn is_service_unavailable(&self) -> bool {
        self.is_reason_or_code("ServiceUnavailable", 503)
    }

    /// 429 TooManyRequests (reason, or the code with any reason — an eviction
    /// blocked by a PodDisruptionBudget is a 429 too).
    pub fn is_too_many_requests(&self) -> bool {
        self.reason() == "TooManyRequests" || self.code() == 429
    }

    /// The resourceVersion asked for is newer than the server has: cause
    /// `ResourceVersionTooLarge`, or (servers before 1.18.6) a Timeout whose
    /// cause or message says "Too large resource version". The reflector
    /// relists with resourceVersion "".
    pub fn is_too_large_resource_version(&self) -> bool {
        const MESSAGE: &str = "Too large resource version";
        let causes = self.causes();
        if causes
            .iter()
            .any(|c| c.reason.as_deref() == Some(CAUSE_RESOURCE_VERSION_TOO_LARGE))
        {
            return true;
        }
        self.is_timeout()
            && (causes.iter().any(|c| c.message.as_deref() == Some(MESSAGE))
                || self.message().contains(MESSAGE))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = match self.reason() {
            "" => "Unknown",
            r => r,
        };
        write!(f, "{reason} ({}): {}", self.code(), self.message())
    }
}

impl std::error::Error for ApiError {}

/// The error a response is, if it is one: any status outside 200–206 (101
/// Switching Protocols aside). A `Status` body (JSON with `kind: Status` or no
/// kind, or protobuf `k8s\0` + `v1` `Status`; with a non-empty `status`) is
/// kept as sent; any other body is synthesized into one. `method` decides AlreadyExists vs Conflict for a bare 409.
pub fn api_error(
    method: &Method,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<ApiError> {
    if status == StatusCode::SWITCHING_PROTOCOLS || (200..=206).contains(&status.as_u16()) {
        return None;
    }
    let retry_after = retry_after_header(headers);
    let content_type = content_type(headers);
    let sent = if body.starts_with(PROTOBUF_MAGIC) {
        protobuf_status::decode(body).filter(|s| s.status.as_deref().is_some_and(|s| !s.is_empty()))
    } else if negotiation::is_text(content_type) {
        None
    } else {
        status_body(body)
    };
    if let Some(decoded) = sent {
        return Some(ApiError {
            status: decoded,
            http_status: status,
            retry_after,
            synthesized: false,
        });
    }
    Some(ApiError {
        status: synthesize_status(method, status, content_type, body, retry_after),
        http_status: status,
        retry_after,
        synthesized: true,
    })
}

/// What a successful DELETE returns.
#[derive(Clone, Debug, PartialEq)]
pub enum Deleted<K> {
    /// The object: still there (finalizers, foreground deletion) with a
    /// `deletionTimestamp`, or its final state.
    Object(K),
    /// `Status{status: Success}`: the object is gone.
    Status(Box<Status>),
}

/// Classifies a response and decodes a JSON success body into `K`.
///
/// A 2xx body that turns out to be a `Failure` `Status` is an error too.
pub fn decode_json<K: DeserializeOwned>(
    method: &Method,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<K, Error> {
    check_json_success(method, status, headers, body)?;
    json::decode(body).map_err(|source| match failure_status(body) {
        Some(s) => Error::Api(Box::new(ApiError::from_status(s, status, headers))),
        None => Error::Decode { status, source },
    })
}

/// Classifies a response and decodes a JSON list page.
pub fn decode_json_list<K: DeserializeOwned>(
    method: &Method,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ObjectList<K>, Error> {
    decode_json(method, status, headers, body)
}

/// Classifies a DELETE response: the object, or a `Success` `Status`.
pub fn decode_json_delete<K: DeserializeOwned>(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Deleted<K>, Error> {
    check_json_success(&Method::DELETE, status, headers, body)?;
    if let Some(decoded) = status_body(body) {
        if decoded.status.as_deref() == Some("Success") {
            return Ok(Deleted::Status(Box::new(decoded)));
        }
        return Err(ApiError::from_status(decoded, status, headers).into());
    }
    json::decode(body)
        .map(Deleted::Object)
        .map_err(|source| Error::Decode { status, source })
}

fn check_json_success(
    method: &Method,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Error> {
    if let Some(e) = api_error(method, status, headers, body) {
        return Err(e.into());
    }
    match negotiation::response_format(content_type(headers)) {
        Ok(Format::Json) => Ok(()),
        Ok(format) => Err(Error::NotJson { status, format }),
        Err(source) => Err(Error::ContentType { status, source }),
    }
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok())
}

fn retry_after_header(headers: &HeaderMap) -> Option<RetryAfter> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(RetryAfter::parse)
}

/// A JSON `Status` body: `kind` "Status" or absent, and a non-empty `status`
/// (client-go's test for "did the server give us a status response").
fn status_body(body: &[u8]) -> Option<Status> {
    let Value::Object(mut map) = serde_json::from_slice::<Value>(body).ok()? else {
        return None;
    };
    if map.get("kind").is_some_and(|k| k != "Status") {
        return None;
    }
    if map
        .get("status")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return None;
    }
    // Old servers wrote an empty or odd apiVersion; the Status itself matters.
    map.remove("kind");
    map.remove("apiVersion");
    serde_json::from_value(Value::Object(map)).ok()
}

fn failure_status(body: &[u8]) -> Option<Status> {
    status_body(body).filter(|s| s.status.as_deref() == Some("Failure"))
}

/// client-go's `NewGenericServerResponse` for a body that is not a `Status`.
fn synthesize_status(
    method: &Method,
    status: StatusCode,
    content_type: Option<&str>,
    body: &[u8],
    retry_after: Option<RetryAfter>,
) -> Status {
    let excerpt = excerpt(body);
    let server_message = if excerpt.is_empty() {
        "unknown"
    } else {
        excerpt.as_str()
    };
    let code = status.as_u16();
    let (reason, message) = match code {
        409 if method == Method::POST => ("AlreadyExists", "the server reported a conflict".to_owned()),
        409 => ("Conflict", "the server reported a conflict".to_owned()),
        404 => ("NotFound", "the server could not find the requested resource".to_owned()),
        400 => ("BadRequest", "the server rejected our request for an unknown reason".to_owned()),
        401 => ("Unauthorized", "the server has asked for the client to provide credentials".to_owned()),
        403 => ("Forbidden", server_message.to_owned()),
        405 => ("MethodNotAllowed", "the server does not allow this method on the requested resource".to_owned()),
        406 if server_message == "unknown" => (
            "NotAcceptable",
            "the server was unable to respond with a content type that the client supports".to_owned(),
        ),
        406 => ("NotAcceptable", server_message.to_owned()),
        415 => ("UnsupportedMediaType", server_message.to_owned()),
        422 => ("Invalid", "the server rejected our request due to an error in our request".to_owned()),
        429 => (
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later".to_owned(),
        ),
        503 => ("ServiceUnavailable", "the server is currently unable to handle the request".to_owned()),
        504 => (
            "Timeout",
            "the server was unable to return a response in the time allotted, but may still be processing the request"
                .to_owned(),
        ),
        500.. => (
            "InternalError",
            format!("an error on the server ({server_message:?}) has prevented the request from succeeding"),
        ),
        _ => (
            "",
            format!("the server responded with the status code {code} but did not return more information"),
        ),
    };
    let retry_after_seconds = match retry_after {
        Some(RetryAfter::Delay(d)) => i32::try_from(d.as_secs()).ok(),
        _ => None,
    };
    // client-go keeps a text body as the message and says "unknown" for
    // anything else; windlass keeps the excerpt either way, labelled by type.
    let cause_message = match (negotiation::is_text(content_type), excerpt.is_empty()) {
        (_, true) => "unknown".to_owned(),
        (true, false) => excerpt,
        (false, false) => format!("{} body: {excerpt}", content_type.unwrap_or("untyped")),
    };
    Status {
        code: Some(i32::from(code)),
        reason: (!reason.is_empty()).then(|| reason.to_owned()),
        message: Some(message),
        status: Some("Failure".to_owned()),
        details: Some(StatusDetails {
            causes: Some(vec![StatusCause {
                reason: Some(CAUSE_UNEXPECTED_SERVER_RESPONSE.to_owned()),
                message: Some(cause_message),
                field: None,
            }]),
            retry_after_seconds,
            ..StatusDetails::default()
        }),
        ..Status::default()
    }
}

/// At most [`MAX_UNSTRUCTURED_BODY`] bytes of `body` as text, cut at a
/// character boundary, invalid UTF-8 replaced, surrounding whitespace trimmed.
fn excerpt(body: &[u8]) -> String {
    let mut end = body.len().min(MAX_UNSTRUCTURED_BODY);
    if end < body.len() {
        // Step back over continuation bytes so no character is split.
        let mut back = 0;
        while back < 3 && end > 0 && body[end] & 0xC0 == 0x80 {
            end -= 1;
            back += 1;
        }
    }
    let mut text = String::from_utf8_lossy(&body[..end]).into_owned();
    // Replacement characters take 3 bytes for each invalid one: cut again.
    if text.len() > MAX_UNSTRUCTURED_BODY {
        let mut cut = MAX_UNSTRUCTURED_BODY;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text.trim().to_owned()
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the preferred HTTP-date
/// form. The obsolete RFC 850 and asctime forms are not accepted.
fn parse_imf_fixdate(value: &str) -> Option<SystemTime> {
    let mut parts = value.split(' ');
    let weekday = parts.next()?;
    if weekday.len() != 4 || !weekday.ends_with(',') {
        return None;
    }
    let day: u32 = parse_digits(parts.next()?, 2)?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: u32 = parse_digits(parts.next()?, 4)?;
    let mut clock = parts.next()?.split(':');
    let hour: u32 = parse_digits(clock.next()?, 2)?;
    let minute: u32 = parse_digits(clock.next()?, 2)?;
    let second: u32 = parse_digits(clock.next()?, 2)?;
    if clock.next().is_some() || parts.next()? != "GMT" || parts.next().is_some() {
        return None;
    }
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 || year < 1970 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + u64::from(hour * 3600 + minute * 60 + second);
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

fn parse_digits(s: &str, len: usize) -> Option<u32> {
    if s.len() == len && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (year ≥ 1970).
fn days_from_civil(year: u32, month: u32, day: u32) -> u64 {
    let y = u64::from(if month <= 2 { year - 1 } else { year });
    let m = u64::from(month);
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + u64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests;
