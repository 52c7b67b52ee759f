//! Kubernetes `Status` errors as the API server writes them: the reason, the
//! HTTP code, the exact message and the details a client reads
//! (`apimachinery pkg/api/errors`, `apiserver pkg/endpoints/handlers/negotiation`).
//! This module owns the constructors; the model decides when each one
//! applies, and the HTTP front and fault injection use the rest (401, 406,
//! 413, 429, 500, 503) so every layer answers in the same words.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusCause, StatusDetails};

use super::resource::Resource;

/// A request the model refused: the whole `Status` the server answers with.
///
/// The HTTP code is `status.code`; a watch that fails after its headers
/// carries the same value in an `ERROR` event instead.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusError(pub Box<Status>);

/// What every model call returns.
pub type Result<T, E = StatusError> = std::result::Result<T, E>;

impl StatusError {
    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        self.0
            .code
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(500)
    }

    /// The `reason` (`NotFound`, `Conflict`, `Expired`, …).
    pub fn reason(&self) -> &str {
        self.0.reason.as_deref().unwrap_or("")
    }

    /// The human-readable `message`.
    pub fn message(&self) -> &str {
        self.0.message.as_deref().unwrap_or("")
    }

    /// The `Status` itself.
    pub fn status(&self) -> &Status {
        &self.0
    }

    /// The `Status` as JSON, in the shape the server writes.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&*self.0).unwrap_or_default()
    }
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.reason(), self.code(), self.message())
    }
}

impl std::error::Error for StatusError {}

/// One field error of an `Invalid` (422) answer, as `field.Error` renders it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// `causes[].reason`, e.g. `FieldValueInvalid`.
    pub reason: &'static str,
    /// The field path, e.g. `metadata.name`.
    pub field: String,
    /// The detail after the type word, e.g. `Invalid value: "X": …`.
    pub message: String,
}

impl FieldError {
    /// `field.Invalid`: `Invalid value: "<value>": <detail>`.
    pub fn invalid(field: &str, value: &str, detail: &str) -> Self {
        Self {
            reason: "FieldValueInvalid",
            field: field.to_owned(),
            message: format!("Invalid value: {value:?}: {detail}"),
        }
    }

    /// `field.Required`: `Required value: <detail>`.
    pub fn required(field: &str, detail: &str) -> Self {
        let message = if detail.is_empty() {
            "Required value".to_owned()
        } else {
            format!("Required value: {detail}")
        };
        Self {
            reason: "FieldValueRequired",
            field: field.to_owned(),
            message,
        }
    }

    /// `field.Forbidden`: `Forbidden: <detail>`.
    pub fn forbidden(field: &str, detail: &str) -> Self {
        Self {
            reason: "FieldValueForbidden",
            field: field.to_owned(),
            message: format!("Forbidden: {detail}"),
        }
    }

    /// `field.NotSupported`: `Unsupported value: "<value>": supported values: "a", "b"`.
    pub fn not_supported(field: &str, value: &str, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        Self {
            reason: "FieldValueNotSupported",
            field: field.to_owned(),
            message: format!(
                "Unsupported value: {value:?}: supported values: {}",
                list.join(", ")
            ),
        }
    }

    fn rendered(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

fn failure(
    code: u16,
    reason: &str,
    message: String,
    details: Option<StatusDetails>,
) -> StatusError {
    StatusError(Box::new(Status {
        code: Some(i32::from(code)),
        details,
        message: Some(message),
        reason: (!reason.is_empty()).then(|| reason.to_owned()),
        status: Some("Failure".to_owned()),
        ..Status::default()
    }))
}

fn details(resource: &Resource, name: &str) -> StatusDetails {
    StatusDetails {
        group: Some(resource.group.clone()),
        kind: Some(resource.plural.clone()),
        name: Some(name.to_owned()),
        ..StatusDetails::default()
    }
}

/// 404 NotFound: `pods "x" not found`.
pub fn not_found(resource: &Resource, name: &str) -> StatusError {
    failure(
        404,
        "NotFound",
        format!("{} {name:?} not found", resource.qualified_resource()),
        Some(details(resource, name)),
    )
}

/// 404 NotFound for a namespace that does not exist, from namespace lifecycle admission.
pub fn namespace_not_found(namespace: &str) -> StatusError {
    failure(
        404,
        "NotFound",
        format!("namespaces {namespace:?} not found"),
        Some(StatusDetails {
            name: Some(namespace.to_owned()),
            kind: Some("namespaces".to_owned()),
            group: Some(String::new()),
            ..StatusDetails::default()
        }),
    )
}

/// 404 NotFound for a path the server does not serve.
pub fn no_such_resource() -> StatusError {
    failure(
        404,
        "NotFound",
        "the server could not find the requested resource".to_owned(),
        Some(StatusDetails::default()),
    )
}

/// 409 AlreadyExists: `pods "x" already exists`.
pub fn already_exists(resource: &Resource, name: &str) -> StatusError {
    failure(
        409,
        "AlreadyExists",
        format!("{} {name:?} already exists", resource.qualified_resource()),
        Some(details(resource, name)),
    )
}

/// The detail of a stale-resourceVersion conflict.
pub const OBJECT_MODIFIED: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

/// 409 Conflict: `Operation cannot be fulfilled on pods "x": <detail>`.
pub fn conflict(resource: &Resource, name: &str, detail: &str) -> StatusError {
    failure(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {} {name:?}: {detail}",
            resource.qualified_resource()
        ),
        Some(details(resource, name)),
    )
}

/// 422 Invalid: `Pod "x" is invalid: <errors>`, one cause per field error.
pub fn invalid(resource: &Resource, name: &str, errors: &[FieldError]) -> StatusError {
    invalid_kind(
        &resource.qualified_kind(),
        &resource.group,
        &resource.kind,
        name,
        errors,
    )
}

/// 422 Invalid for a kind that is not a served resource (e.g. `ListOptions.meta.k8s.io`).
pub fn invalid_kind(
    qualified_kind: &str,
    group: &str,
    kind: &str,
    name: &str,
    errors: &[FieldError],
) -> StatusError {
    let rendered = match errors {
        [one] => one.rendered(),
        many => format!(
            "[{}]",
            many.iter()
                .map(FieldError::rendered)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let causes = errors
        .iter()
        .map(|e| StatusCause {
            reason: Some(e.reason.to_owned()),
            message: Some(e.message.clone()),
            field: Some(e.field.clone()),
        })
        .collect();
    failure(
        422,
        "Invalid",
        format!("{qualified_kind} {name:?} is invalid: {rendered}"),
        Some(StatusDetails {
            name: Some(name.to_owned()),
            group: Some(group.to_owned()),
            kind: Some(kind.to_owned()),
            causes: Some(causes),
            ..StatusDetails::default()
        }),
    )
}

/// 422 Invalid for list or watch options (`ListOptions.meta.k8s.io "" is invalid: …`).
pub fn invalid_list_options(errors: &[FieldError]) -> StatusError {
    invalid_kind(
        "ListOptions.meta.k8s.io",
        "meta.k8s.io",
        "ListOptions",
        "",
        errors,
    )
}

/// 422 Invalid from applying a JSON patch, as the patch handler answers.
pub fn unprocessable(message: String) -> StatusError {
    let cause = StatusCause {
        reason: Some("UnexpectedServerResponse".to_owned()),
        message: Some(message.clone()),
        field: None,
    };
    failure(
        422,
        "Invalid",
        message,
        Some(StatusDetails {
            causes: Some(vec![cause]),
            ..StatusDetails::default()
        }),
    )
}

/// 400 BadRequest with a message.
pub fn bad_request(message: impl Into<String>) -> StatusError {
    failure(400, "BadRequest", message.into(), None)
}

/// 405 MethodNotAllowed.
pub fn method_not_allowed() -> StatusError {
    failure(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource".to_owned(),
        Some(StatusDetails::default()),
    )
}

/// 415 UnsupportedMediaType for a patch type the resource does not take.
pub fn unsupported_patch_type(accepted: &[&str]) -> StatusError {
    failure(
        415,
        "UnsupportedMediaType",
        format!(
            "the body of the request was in an unknown format - accepted media types include: {}",
            accepted.join(", ")
        ),
        None,
    )
}

/// 410 Expired with a message (lists, watches, continue tokens).
pub fn expired(message: impl Into<String>) -> StatusError {
    failure(410, "Expired", message.into(), None)
}

/// The message of a list whose exact resourceVersion is compacted.
pub const LIST_TOO_OLD: &str = "The resourceVersion for the provided list is too old.";

/// The message of a continue token whose snapshot is compacted, when the
/// answer carries a fresh token (etcd3 `inconsistentContinue`).
pub const CONTINUE_TOO_OLD: &str = "The provided continue parameter is too old to display a \
consistent list result. You can start a new list without the continue parameter, or use the \
continue token in this response to retrieve the remainder of the results. Continuing with the \
provided token results in an inconsistent list - objects that were created, modified, or \
deleted between the time the first chunk was returned and now may show up in the list.";

/// 410 Expired for a watch older than the watch cache's window:
/// `too old resource version: N (M)`.
pub fn watch_too_old(requested: u64, oldest: u64) -> StatusError {
    expired(format!("too old resource version: {requested} ({oldest})"))
}

/// 504 Timeout for a resourceVersion the server has not reached, with the
/// `ResourceVersionTooLarge` cause and `retryAfterSeconds: 1`.
pub fn too_large_resource_version(requested: u64, current: u64) -> StatusError {
    failure(
        504,
        "Timeout",
        format!("Timeout: Too large resource version: {requested}, current: {current}"),
        Some(StatusDetails {
            causes: Some(vec![StatusCause {
                reason: Some("ResourceVersionTooLarge".to_owned()),
                message: Some("Too large resource version".to_owned()),
                field: None,
            }]),
            retry_after_seconds: Some(1),
            ..StatusDetails::default()
        }),
    )
}

/// 500 InternalError: `Internal error occurred: <detail>`.
pub fn internal(detail: &str) -> StatusError {
    failure(
        500,
        "InternalError",
        format!("Internal error occurred: {detail}"),
        Some(StatusDetails {
            causes: Some(vec![StatusCause {
                reason: None,
                message: Some(detail.to_owned()),
                field: None,
            }]),
            ..StatusDetails::default()
        }),
    )
}

/// The `Success` Status a DELETE answers with for most resources.
pub fn deleted(resource: &Resource, name: &str, uid: &str) -> Status {
    Status {
        status: Some("Success".to_owned()),
        details: Some(StatusDetails {
            uid: Some(uid.to_owned()),
            ..details(resource, name)
        }),
        ..Status::default()
    }
}

/// 403 Forbidden with a message about `name`.
pub fn forbidden(detail: &str, resource: &Resource, name: &str) -> StatusError {
    failure(
        403,
        "Forbidden",
        format!(
            "{} {name:?} is forbidden: {detail}",
            resource.qualified_resource()
        ),
        Some(details(resource, name)),
    )
}

/// 401 Unauthorized (`NewUnauthorized`); the server's own message is `Unauthorized`.
pub fn unauthorized(message: &str) -> StatusError {
    let message = if message.is_empty() {
        "not authorized"
    } else {
        message
    };
    failure(401, "Unauthorized", message.to_owned(), None)
}

/// 405 MethodNotAllowed for a verb a resource does not take (`NewMethodNotSupported`).
pub fn method_not_supported(resource: &Resource, action: &str) -> StatusError {
    failure(
        405,
        "MethodNotAllowed",
        format!(
            "{action} is not supported on resources of kind {:?}",
            resource.qualified_resource()
        ),
        Some(StatusDetails {
            group: Some(resource.group.clone()),
            kind: Some(resource.plural.clone()),
            ..StatusDetails::default()
        }),
    )
}

/// 406 NotAcceptable: no acceptable media type in `Accept`.
pub fn not_acceptable(accepted: &[&str]) -> StatusError {
    failure(
        406,
        "NotAcceptable",
        format!(
            "only the following media types are accepted: {}",
            accepted.join(", ")
        ),
        None,
    )
}

/// 413 RequestEntityTooLarge: `Request entity too large: <detail>`.
pub fn request_entity_too_large(detail: &str) -> StatusError {
    failure(
        413,
        "RequestEntityTooLarge",
        format!("Request entity too large: {detail}"),
        None,
    )
}

/// 415 UnsupportedMediaType for a request body in a format the server does not read.
pub fn unsupported_media_type(accepted: &[&str]) -> StatusError {
    unsupported_patch_type(accepted)
}

/// 429 TooManyRequests as a Status (priority and fairness answers a
/// `text/plain` body instead; that is the HTTP front's to write).
pub fn too_many_requests(message: &str, retry_after_seconds: i32) -> StatusError {
    failure(
        429,
        "TooManyRequests",
        message.to_owned(),
        Some(StatusDetails {
            retry_after_seconds: Some(retry_after_seconds),
            ..StatusDetails::default()
        }),
    )
}

/// 500 ServerTimeout (`NewServerTimeout`): `The <operation> operation against
/// <resource> could not be completed at this time, please try again.`
pub fn server_timeout(
    resource: &Resource,
    operation: &str,
    retry_after_seconds: i32,
) -> StatusError {
    failure(
        500,
        "ServerTimeout",
        format!(
            "The {operation} operation against {} could not be completed at this time, please try again.",
            resource.qualified_resource()
        ),
        Some(StatusDetails {
            group: Some(resource.group.clone()),
            kind: Some(resource.plural.clone()),
            name: Some(operation.to_owned()),
            retry_after_seconds: Some(retry_after_seconds),
            ..StatusDetails::default()
        }),
    )
}

/// 503 ServiceUnavailable with a message (the server sends `Retry-After: 1` beside it).
pub fn service_unavailable(message: &str) -> StatusError {
    failure(503, "ServiceUnavailable", message.to_owned(), None)
}
