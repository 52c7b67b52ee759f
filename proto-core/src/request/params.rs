//! Parameters of the calls other than list and watch (those are in
//! [`crate::params`]): get, create and replace, patch, delete, logs. Plain
//! data; [`super::validation`] checks them and [`super::Builder`] writes them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Parameters of a get call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GetParams {
    /// `resourceVersion`: unset is a consistent read, `"0"` any cached version.
    pub resource_version: Option<String>,
}

impl GetParams {
    /// Any version the server has at hand (`resourceVersion=0`), possibly stale.
    pub fn any() -> Self {
        Self {
            resource_version: Some("0".into()),
        }
    }
}

/// `fieldValidation`: what the server does with unknown or duplicate fields in a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Accept the object and return a warning header per field.
    Warn,
    /// Reject the request.
    Strict,
}

impl FieldValidation {
    /// The query-string value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ignore => "Ignore",
            Self::Warn => "Warn",
            Self::Strict => "Strict",
        }
    }
}

/// Parameters of a create or replace call (and of writes to subresources).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PostParams {
    /// `dryRun=All`: validate and admit, but persist nothing.
    pub dry_run: bool,
    /// `fieldManager`: the name recorded in `managedFields` (at most 128 bytes, printable).
    pub field_manager: Option<String>,
    /// `fieldValidation`.
    pub field_validation: Option<FieldValidation>,
}

/// Parameters of a patch call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PatchParams {
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `force`: on server-side apply, take ownership of conflicting fields.
    /// Forbidden on other patch types.
    pub force: bool,
    /// `fieldManager`: required for server-side apply.
    pub field_manager: Option<String>,
    /// `fieldValidation`.
    pub field_validation: Option<FieldValidation>,
}

impl PatchParams {
    /// Parameters for server-side apply as `manager`.
    pub fn apply(manager: impl Into<String>) -> Self {
        Self {
            field_manager: Some(manager.into()),
            ..Self::default()
        }
    }

    /// Also force ownership of conflicting fields (apply only).
    pub fn force(mut self) -> Self {
        self.force = true;
        self
    }
}

/// A patch and its type; the body is serialized as JSON.
#[derive(Clone, Debug, PartialEq)]
pub enum Patch<T> {
    /// RFC 6902 JSON patch (`application/json-patch+json`): `T` serializes to an array of operations.
    Json(T),
    /// RFC 7386 merge patch (`application/merge-patch+json`).
    Merge(T),
    /// Kubernetes strategic merge patch (`application/strategic-merge-patch+json`);
    /// built-in kinds only, custom resources reject it.
    Strategic(T),
    /// Server-side apply (`application/apply-patch+yaml`; JSON is YAML). Needs a field manager.
    Apply(T),
}

impl<T> Patch<T> {
    /// The request's `Content-Type`.
    pub fn content_type(&self) -> &'static str {
        match self {
            Self::Json(_) => "application/json-patch+json",
            Self::Merge(_) => "application/merge-patch+json",
            Self::Strategic(_) => "application/strategic-merge-patch+json",
            Self::Apply(_) => "application/apply-patch+yaml",
        }
    }

    /// Whether this is a server-side apply.
    pub fn is_apply(&self) -> bool {
        matches!(self, Self::Apply(_))
    }

    /// The patch document.
    pub fn body(&self) -> &T {
        match self {
            Self::Json(b) | Self::Merge(b) | Self::Strategic(b) | Self::Apply(b) => b,
        }
    }
}

/// `propagationPolicy`: what happens to the dependents of a deleted object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PropagationPolicy {
    /// Leave dependents alone.
    Orphan,
    /// Delete the object now, dependents in the background.
    Background,
    /// Delete dependents first; the object stays (with a finalizer) until they are gone.
    Foreground,
}

impl PropagationPolicy {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Orphan => "Orphan",
            Self::Background => "Background",
            Self::Foreground => "Foreground",
        }
    }
}

/// `preconditions`: delete only if the object still has this uid and/or resourceVersion.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Preconditions {
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
}

/// Parameters of a delete or deletecollection call; sent as a `DeleteOptions` body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteParams {
    /// `dryRun: ["All"]`.
    pub dry_run: bool,
    /// `gracePeriodSeconds`: 0 deletes at once; unset uses the object's default.
    pub grace_period_seconds: Option<u32>,
    /// `propagationPolicy`.
    pub propagation_policy: Option<PropagationPolicy>,
    /// `preconditions`.
    pub preconditions: Option<Preconditions>,
}

/// Which stream of a container's log to read (`stream`, Kubernetes 1.32+).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogStream {
    /// Standard output only.
    Stdout,
    /// Standard error only.
    Stderr,
    /// Both, interleaved (the server's default).
    All,
}

impl LogStream {
    /// The query-string value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "Stdout",
            Self::Stderr => "Stderr",
            Self::All => "All",
        }
    }
}

/// Parameters of a pod log call (`PodLogOptions`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogParams {
    /// `container`: required when the pod has more than one.
    pub container: Option<String>,
    /// `follow`: keep streaming as the container writes.
    pub follow: bool,
    /// `previous`: the log of the previous, terminated instance.
    pub previous: bool,
    /// `sinceSeconds`: only lines newer than this many seconds (at least 1).
    /// Not together with `since_time`.
    pub since_seconds: Option<u32>,
    /// `sinceTime`: only lines newer than this time. Not together with `since_seconds`.
    pub since_time: Option<Time>,
    /// `timestamps`: prefix every line with an RFC 3339 timestamp.
    pub timestamps: bool,
    /// `tailLines`: only the last this many lines.
    pub tail_lines: Option<u32>,
    /// `limitBytes`: stop after this many bytes (at least 1).
    pub limit_bytes: Option<u64>,
    /// `stream`: stdout, stderr or both. Not together with `tail_lines` unless `All`.
    pub stream: Option<LogStream>,
    /// `insecureSkipTLSVerifyBackend`: do not verify the kubelet's certificate.
    pub insecure_skip_tls_verify_backend: bool,
}
