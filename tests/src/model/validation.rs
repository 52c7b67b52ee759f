//! The server's own checks of what a request carries: object names, labels,
//! resourceVersions and list options, each failing with the field errors
//! (422) or the 400 the API server answers. Selector syntax lives in
//! `selector`; this module owns the rest.

use serde_json::Value;
use windlass_proto::params::{ListParams, ResourceVersionMatch};

use super::resource::NameRule;
use super::selector;
use super::status::{self, FieldError, Result};

/// The label errors of `object` (422), or a 400 when `metadata.labels` is
/// not a map of strings (the server cannot even decode it).
pub(super) fn check_labels(object: &Value) -> Result<Vec<FieldError>> {
    let labels = &object["metadata"]["labels"];
    if labels.is_null() {
        return Ok(Vec::new());
    }
    let Some(map) = labels.as_object() else {
        return Err(status::bad_request(
            "json: cannot unmarshal into Go struct field ObjectMeta.metadata.labels of type map[string]string",
        ));
    };
    if map.values().any(|v| !v.is_string()) {
        return Err(status::bad_request(
            "json: cannot unmarshal into Go struct field ObjectMeta.metadata.labels of type string",
        ));
    }
    Ok(selector::label_errors(map))
}

pub(super) fn parse_rv(rv: &str) -> Result<u64> {
    rv.parse::<u64>().map_err(|_| {
        status::bad_request(format!(
            "resourceVersion: Invalid value: {rv:?}: strconv.ParseUint: parsing {rv:?}: invalid syntax"
        ))
    })
}

pub(super) fn validate_list_params(params: &ListParams) -> Result<()> {
    let mut errors = Vec::new();
    let rv = params.resource_version.as_deref().unwrap_or("");
    if let Some(m) = params.resource_version_match {
        if rv.is_empty() {
            errors.push(FieldError::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if params
            .continue_token
            .as_deref()
            .is_some_and(|c| !c.is_empty())
        {
            errors.push(FieldError::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
        if m == ResourceVersionMatch::Exact && rv == "0" {
            errors.push(FieldError::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(status::invalid_list_options(&errors))
    }
}

pub(super) const SUBDOMAIN_RULE: &str = "a lowercase RFC 1123 subdomain must consist of lower case \
alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character \
(e.g. 'example.com', regex used for validation is \
'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_RULE: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric \
characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or \
'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_RULE: &str = "a DNS-1035 label must consist of lower case alphanumeric characters \
or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. \
'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// The name checks of `ValidateObjectMeta`: one field error per broken rule.
pub(super) fn validate_name(rule: NameRule, name: &str) -> Vec<FieldError> {
    let (max, ok, message) = match rule {
        NameRule::Subdomain => (253, name.split('.').all(is_label), SUBDOMAIN_RULE),
        NameRule::Label => (63, is_label(name), LABEL_RULE),
        NameRule::Dns1035Label => (
            63,
            is_label(name) && name.as_bytes()[0].is_ascii_lowercase(),
            DNS1035_RULE,
        ),
    };
    let mut errors = Vec::new();
    if name.len() > max {
        errors.push(FieldError::invalid(
            "metadata.name",
            name,
            &format!("must be no more than {max} characters"),
        ));
    }
    if !ok {
        errors.push(FieldError::invalid("metadata.name", name, message));
    }
    errors
}
