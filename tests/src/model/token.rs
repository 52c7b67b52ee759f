//! Continue tokens, in the API server's own shape: base64 (URL alphabet, no
//! padding) of `{"v":"meta.k8s.io/v1","rv":N,"start":"<key after the last>"}`,
//! where `start` is relative to the list's key prefix and `rv: -1` means
//! "continue at the latest revision" (the fresh token of an expired one).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

const TOKEN_VERSION: &str = "meta.k8s.io/v1";

/// A decoded continue token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContinueToken {
    /// Always `meta.k8s.io/v1`.
    #[serde(rename = "v")]
    pub version: String,
    /// The snapshot revision, or -1 for the latest.
    #[serde(rename = "rv")]
    pub resource_version: i64,
    /// The first key to read, relative to the list's prefix.
    #[serde(rename = "start")]
    pub start: String,
}

impl ContinueToken {
    /// A token resuming at `start` in the snapshot `resource_version`.
    pub fn new(resource_version: i64, start: String) -> Self {
        Self {
            version: TOKEN_VERSION.to_owned(),
            resource_version,
            start,
        }
    }

    /// The opaque string form.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Reads a token; the error is the text after `invalid continue token: `.
    pub fn decode(token: &str) -> Result<Self, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(token.trim_end_matches('='))
            .map_err(|e| format!("continue key is not valid: {e}"))?;
        let decoded: Self = serde_json::from_slice(&bytes)
            .map_err(|e| format!("continue key is not valid: {e}"))?;
        if decoded.version != TOKEN_VERSION {
            return Err(
                "continue key is not valid: server does not recognize this encoded version".into(),
            );
        }
        if decoded.resource_version == 0 || decoded.resource_version < -1 {
            return Err(format!(
                "continue key is not valid: incorrect encoded start resourceVersion (version {TOKEN_VERSION})"
            ));
        }
        if decoded.start.is_empty() {
            return Err("continue key is not valid: encoded start key empty".into());
        }
        Ok(decoded)
    }
}
