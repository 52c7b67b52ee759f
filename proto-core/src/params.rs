//! Parameters of list and watch calls, as plain data. Building them into
//! requests and validating them with client-go's rules belongs to the request
//! layer; this module only names the fields, so every part of the core
//! (the reflector, the server model) speaks the same words.

/// `resourceVersionMatch` on a list or watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResourceVersionMatch {
    /// At least the given resourceVersion.
    NotOlderThan,
    /// Exactly the given resourceVersion, or 410 Expired when it is too old.
    Exact,
}

impl ResourceVersionMatch {
    /// The query-string value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotOlderThan => "NotOlderThan",
            Self::Exact => "Exact",
        }
    }
}

/// Parameters of a list call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListParams {
    /// `labelSelector`.
    pub label_selector: Option<String>,
    /// `fieldSelector`.
    pub field_selector: Option<String>,
    /// `resourceVersion`: unset is a consistent read, `"0"` any version.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`.
    pub resource_version_match: Option<ResourceVersionMatch>,
    /// `limit`: the page size; `None` or 0 asks for everything at once.
    pub limit: Option<u32>,
    /// `continue`: the token from the previous page.
    pub continue_token: Option<String>,
    /// `timeoutSeconds`.
    pub timeout_seconds: Option<u32>,
}

/// Parameters of a watch call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchParams {
    /// `labelSelector`.
    pub label_selector: Option<String>,
    /// `fieldSelector`.
    pub field_selector: Option<String>,
    /// `resourceVersion` to watch from.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch` (only `NotOlderThan`, and only with `sendInitialEvents`).
    pub resource_version_match: Option<ResourceVersionMatch>,
    /// `timeoutSeconds`: the server ends the watch after this long.
    pub timeout_seconds: Option<u32>,
    /// `allowWatchBookmarks`.
    pub allow_watch_bookmarks: bool,
    /// `sendInitialEvents` (watch-list).
    pub send_initial_events: Option<bool>,
}
