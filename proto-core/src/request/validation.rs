//! The checks a request passes before it is sent, with the rules client-go and
//! the API server apply, so a bad combination fails here with a message that
//! names the field instead of as a 400 or 422 from the server.
//!
//! Sources (apimachinery and apiserver): `apis/meta/internalversion/validation`
//! (`ValidateListOptions`, `validateWatchOptions`), `apis/meta/v1/validation`
//! (`ValidateFieldManager`, `ValidatePatchOptions`), the storage layer's
//! "specifying resource version is not allowed when using continue", and
//! `ValidatePodLogOptions`. Messages follow apimachinery's
//! `<field>: <kind>: <detail>` form. Path segments (names, namespaces) are
//! checked in [`crate::resource`]. This module does not validate objects.

use crate::params::{ListParams, ResourceVersionMatch, WatchParams};

use super::params::{LogParams, LogStream, PatchParams, PostParams};

/// The longest `fieldManager` the API server accepts, in bytes.
pub const FIELD_MANAGER_MAX_LEN: usize = 128;

/// A parameter combination the API server would reject.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// `resourceVersionMatch` on a list without `resourceVersion`.
    #[error(
        "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
    )]
    MatchWithoutResourceVersion,
    /// `resourceVersionMatch` together with `continue`.
    #[error(
        "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided"
    )]
    MatchWithContinue,
    /// `resourceVersionMatch=Exact` with `resourceVersion=0`.
    #[error(
        "resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""
    )]
    ExactAtZero,
    /// A `resourceVersion` other than `""`/`"0"` together with `continue`
    /// (the token already pins the version).
    #[error(
        "resourceVersion: Forbidden: specifying resource version ({resource_version:?}) is not allowed when using continue"
    )]
    ResourceVersionWithContinue {
        /// The resourceVersion given.
        resource_version: String,
    },
    /// `sendInitialEvents` on a watch without `resourceVersionMatch=NotOlderThan`.
    #[error(
        "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
    )]
    InitialEventsWithoutNotOlderThan,
    /// `resourceVersionMatch` on a watch without `sendInitialEvents`.
    #[error(
        "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
    )]
    MatchWithoutInitialEvents,
    /// `resourceVersionMatch` other than `NotOlderThan` on a watch.
    #[error(
        "resourceVersionMatch: Unsupported value: \"{value}\": supported values: \"NotOlderThan\"",
        value = .0.as_str()
    )]
    WatchMatchNotSupported(ResourceVersionMatch),
    /// A `fieldManager` longer than [`FIELD_MANAGER_MAX_LEN`] bytes.
    #[error(
        "fieldManager: Too long: may not be more than {FIELD_MANAGER_MAX_LEN} bytes (got {len})"
    )]
    FieldManagerTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A `fieldManager` with a character that is not printable.
    #[error("fieldManager: Invalid value: invalid character {ch:?} (at position {position})")]
    FieldManagerNotPrintable {
        /// The character.
        ch: char,
        /// Its byte offset.
        position: usize,
    },
    /// Server-side apply without a `fieldManager`.
    #[error("fieldManager: Required value: is required for apply patch")]
    FieldManagerRequiredForApply,
    /// `force` on a patch that is not server-side apply.
    #[error("force: Forbidden: may not be specified for non-apply patch")]
    ForceOnNonApplyPatch,
    /// Both `sinceSeconds` and `sinceTime` on a log call.
    #[error(
        "sinceSeconds: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"
    )]
    SinceSecondsAndSinceTime,
    /// `sinceSeconds=0`.
    #[error("sinceSeconds: Invalid value: 0: must be greater than 0")]
    ZeroSinceSeconds,
    /// `limitBytes=0`.
    #[error("limitBytes: Invalid value: 0: must be greater than 0")]
    ZeroLimitBytes,
    /// `tailLines` with a `stream` other than `All`.
    #[error(
        "tailLines: Forbidden: `tailLines` and specific `stream` are mutually exclusive for now"
    )]
    TailLinesWithStream,
}

impl ValidationError {
    /// The query parameter the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            Self::MatchWithoutResourceVersion
            | Self::MatchWithContinue
            | Self::ExactAtZero
            | Self::InitialEventsWithoutNotOlderThan
            | Self::MatchWithoutInitialEvents
            | Self::WatchMatchNotSupported(_) => "resourceVersionMatch",
            Self::ResourceVersionWithContinue { .. } => "resourceVersion",
            Self::FieldManagerTooLong { .. }
            | Self::FieldManagerNotPrintable { .. }
            | Self::FieldManagerRequiredForApply => "fieldManager",
            Self::ForceOnNonApplyPatch => "force",
            Self::SinceSecondsAndSinceTime | Self::ZeroSinceSeconds => "sinceSeconds",
            Self::ZeroLimitBytes => "limitBytes",
            Self::TailLinesWithStream => "tailLines",
        }
    }
}

/// A list call's parameters (`ValidateListOptions` for a non-watch, plus the
/// storage layer's continue rule).
pub fn validate_list(params: &ListParams) -> Result<(), ValidationError> {
    let rv = params.resource_version.as_deref().unwrap_or("");
    let continuing = params
        .continue_token
        .as_deref()
        .is_some_and(|c| !c.is_empty());
    if let Some(rv_match) = params.resource_version_match {
        if rv.is_empty() {
            return Err(ValidationError::MatchWithoutResourceVersion);
        }
        if continuing {
            return Err(ValidationError::MatchWithContinue);
        }
        if rv_match == ResourceVersionMatch::Exact && rv == "0" {
            return Err(ValidationError::ExactAtZero);
        }
    }
    if continuing && !rv.is_empty() && rv != "0" {
        return Err(ValidationError::ResourceVersionWithContinue {
            resource_version: rv.to_owned(),
        });
    }
    Ok(())
}

/// A watch call's parameters (`validateWatchOptions`, WatchList enabled).
pub fn validate_watch(params: &WatchParams) -> Result<(), ValidationError> {
    let rv_match = params.resource_version_match;
    if params.send_initial_events.is_some() && rv_match != Some(ResourceVersionMatch::NotOlderThan)
    {
        return Err(ValidationError::InitialEventsWithoutNotOlderThan);
    }
    if let Some(rv_match) = rv_match {
        if params.send_initial_events.is_none() {
            return Err(ValidationError::MatchWithoutInitialEvents);
        }
        if rv_match != ResourceVersionMatch::NotOlderThan {
            return Err(ValidationError::WatchMatchNotSupported(rv_match));
        }
    }
    Ok(())
}

/// A `fieldManager` (`ValidateFieldManager`): at most 128 bytes, every character printable.
pub fn validate_field_manager(manager: &str) -> Result<(), ValidationError> {
    if manager.len() > FIELD_MANAGER_MAX_LEN {
        return Err(ValidationError::FieldManagerTooLong { len: manager.len() });
    }
    match manager.char_indices().find(|(_, c)| !is_printable(*c)) {
        Some((position, ch)) => Err(ValidationError::FieldManagerNotPrintable { ch, position }),
        None => Ok(()),
    }
}

/// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and
/// the ASCII space. Rust has no general-category table, so this excludes
/// what is not printable by hand: controls, spaces other than U+0020, the
/// format characters (category Cf) and private-use code points.
fn is_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(
        u32::from(c),
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
            | 0xE000..=0xF8FF
            | 0xF0000..=0x10FFFF
    )
}

/// Create and replace parameters.
pub fn validate_post(params: &PostParams) -> Result<(), ValidationError> {
    params
        .field_manager
        .as_deref()
        .map_or(Ok(()), validate_field_manager)
}

/// Patch parameters for a patch of the given kind (`ValidatePatchOptions`).
pub fn validate_patch(params: &PatchParams, is_apply: bool) -> Result<(), ValidationError> {
    let manager = params.field_manager.as_deref().unwrap_or("");
    if is_apply && manager.is_empty() {
        return Err(ValidationError::FieldManagerRequiredForApply);
    }
    if !is_apply && params.force {
        return Err(ValidationError::ForceOnNonApplyPatch);
    }
    validate_field_manager(manager)
}

/// Log parameters (`ValidatePodLogOptions`).
pub fn validate_log(params: &LogParams) -> Result<(), ValidationError> {
    if params.since_seconds.is_some() && params.since_time.is_some() {
        return Err(ValidationError::SinceSecondsAndSinceTime);
    }
    if params.since_seconds == Some(0) {
        return Err(ValidationError::ZeroSinceSeconds);
    }
    if params.limit_bytes == Some(0) {
        return Err(ValidationError::ZeroLimitBytes);
    }
    if params.tail_lines.is_some() && params.stream.is_some_and(|s| s != LogStream::All) {
        return Err(ValidationError::TailLinesWithStream);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::ResourceVersionMatch::{Exact, NotOlderThan};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn list(rv: Option<&str>, m: Option<ResourceVersionMatch>, cont: Option<&str>) -> ListParams {
        ListParams {
            resource_version: rv.map(Into::into),
            resource_version_match: m,
            continue_token: cont.map(Into::into),
            ..ListParams::default()
        }
    }

    // apimachinery internalversion/validation_test.go TestValidateListOptions, list rows.
    #[test]
    fn validation_list_resource_version_match_rules() {
        assert_eq!(validate_list(&list(None, None, None)), Ok(()));
        assert_eq!(
            validate_list(&list(Some("0"), Some(NotOlderThan), None)),
            Ok(())
        );
        assert_eq!(validate_list(&list(Some("10"), Some(Exact), None)), Ok(()));
        assert_eq!(
            validate_list(&list(None, Some(NotOlderThan), None)),
            Err(ValidationError::MatchWithoutResourceVersion)
        );
        assert_eq!(
            validate_list(&list(Some(""), Some(Exact), None)),
            Err(ValidationError::MatchWithoutResourceVersion)
        );
        assert_eq!(
            validate_list(&list(Some("10"), Some(NotOlderThan), Some("tok"))),
            Err(ValidationError::MatchWithContinue)
        );
        assert_eq!(
            validate_list(&list(Some("0"), Some(Exact), None)),
            Err(ValidationError::ExactAtZero)
        );
        let err = ValidationError::ExactAtZero;
        assert_eq!(err.field(), "resourceVersionMatch");
        assert!(
            err.to_string()
                .starts_with("resourceVersionMatch: Forbidden:")
        );
    }

    #[test]
    fn validation_list_continue_with_resource_version() {
        // A continue token with "" or "0" is fine (client-go's pager clears the RV).
        assert_eq!(validate_list(&list(None, None, Some("tok"))), Ok(()));
        assert_eq!(validate_list(&list(Some("0"), None, Some("tok"))), Ok(()));
        assert_eq!(
            validate_list(&list(Some("42"), None, Some("tok"))),
            Err(ValidationError::ResourceVersionWithContinue {
                resource_version: "42".into()
            })
        );
        // An empty continue token is no continue at all.
        assert_eq!(
            validate_list(&list(Some("42"), Some(Exact), Some(""))),
            Ok(())
        );
    }

    fn watch(m: Option<ResourceVersionMatch>, sie: Option<bool>) -> WatchParams {
        WatchParams {
            resource_version_match: m,
            send_initial_events: sie,
            ..WatchParams::default()
        }
    }

    // validation_test.go watch rows: "watch-resourceversionmatch-without-sendInitialEvents-forbidden",
    // "watch-sendInitialEvents-without-resourceversionmatch-forbidden",
    // "watch-sendInitialEvents-with-exact-resourceversionmatch-forbidden".
    #[test]
    fn validation_watch_send_initial_events_rules() {
        assert_eq!(validate_watch(&watch(None, None)), Ok(()));
        assert_eq!(
            validate_watch(&watch(Some(NotOlderThan), Some(true))),
            Ok(())
        );
        assert_eq!(
            validate_watch(&watch(Some(NotOlderThan), Some(false))),
            Ok(())
        );
        assert_eq!(
            validate_watch(&watch(Some(NotOlderThan), None)),
            Err(ValidationError::MatchWithoutInitialEvents)
        );
        assert_eq!(
            validate_watch(&watch(None, Some(true))),
            Err(ValidationError::InitialEventsWithoutNotOlderThan)
        );
        assert_eq!(
            validate_watch(&watch(Some(Exact), Some(true))),
            Err(ValidationError::InitialEventsWithoutNotOlderThan)
        );
        assert_eq!(
            ValidationError::WatchMatchNotSupported(Exact).to_string(),
            "resourceVersionMatch: Unsupported value: \"Exact\": supported values: \"NotOlderThan\""
        );
    }

    #[test]
    fn validation_field_manager_length_and_printable() {
        assert_eq!(validate_field_manager(&"m".repeat(128)), Ok(()));
        assert_eq!(
            validate_field_manager(&"m".repeat(129)),
            Err(ValidationError::FieldManagerTooLong { len: 129 })
        );
        // 43 three-byte characters are 129 bytes: the limit counts bytes, as Go's len does.
        assert_eq!(
            validate_field_manager(&"€".repeat(43)),
            Err(ValidationError::FieldManagerTooLong { len: 129 })
        );
        assert_eq!(
            validate_field_manager("kube ctl\n"),
            Err(ValidationError::FieldManagerNotPrintable {
                ch: '\n',
                position: 8
            })
        );
        assert_eq!(validate_field_manager("kubectl-client-side-apply"), Ok(()));
        assert_eq!(validate_field_manager("contrôleur ünd 控制器"), Ok(()));
        for bad in ['\u{200B}', '\u{FEFF}', '\u{00A0}', '\u{E000}', '\u{7F}'] {
            assert_eq!(
                validate_field_manager(&format!("m{bad}")),
                Err(ValidationError::FieldManagerNotPrintable {
                    ch: bad,
                    position: 1
                }),
                "{bad:?}"
            );
        }
        assert!(
            ValidationError::FieldManagerTooLong { len: 200 }
                .to_string()
                .contains("128")
        );
    }

    #[test]
    fn validation_patch_apply_needs_field_manager_and_force_needs_apply() {
        assert_eq!(
            validate_patch(&PatchParams::default().force(), true),
            Err(ValidationError::FieldManagerRequiredForApply)
        );
        assert_eq!(
            validate_patch(&PatchParams::default(), true),
            Err(ValidationError::FieldManagerRequiredForApply)
        );
        assert_eq!(
            validate_patch(&PatchParams::apply("me").force(), true),
            Ok(())
        );
        assert_eq!(
            validate_patch(&PatchParams::apply("me").force(), false),
            Err(ValidationError::ForceOnNonApplyPatch)
        );
        assert_eq!(validate_patch(&PatchParams::default(), false), Ok(()));
        assert_eq!(
            validate_post(&PostParams {
                field_manager: Some("x".repeat(300)),
                ..PostParams::default()
            }),
            Err(ValidationError::FieldManagerTooLong { len: 300 })
        );
    }

    #[test]
    fn validation_log_options() {
        let time = Time(Default::default());
        let both = LogParams {
            since_seconds: Some(10),
            since_time: Some(time),
            ..LogParams::default()
        };
        assert_eq!(
            validate_log(&both),
            Err(ValidationError::SinceSecondsAndSinceTime)
        );
        let zero = LogParams {
            since_seconds: Some(0),
            ..LogParams::default()
        };
        assert_eq!(validate_log(&zero), Err(ValidationError::ZeroSinceSeconds));
        let zero_bytes = LogParams {
            limit_bytes: Some(0),
            ..LogParams::default()
        };
        assert_eq!(
            validate_log(&zero_bytes),
            Err(ValidationError::ZeroLimitBytes)
        );
        let tail_stderr = LogParams {
            tail_lines: Some(5),
            stream: Some(LogStream::Stderr),
            ..LogParams::default()
        };
        assert_eq!(
            validate_log(&tail_stderr),
            Err(ValidationError::TailLinesWithStream)
        );
        let tail_all = LogParams {
            tail_lines: Some(5),
            stream: Some(LogStream::All),
            ..LogParams::default()
        };
        assert_eq!(validate_log(&tail_all), Ok(()));
    }
}
