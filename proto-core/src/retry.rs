//! Retry policy for API requests (client-go's `rest/with_retry.go`) and the
//! conflict-retry backoff (`util/retry`). This module decides *whether* and
//! *after how long* to try again; the adapter sleeps, passes the
//! [client-side limiter](crate::flowcontrol) again and resends.
//!
//! | what came back | retried for | wait |
//! |---|---|---|
//! | 429 or 5xx **with** `Retry-After` (header or `details.retryAfterSeconds`) | every request | the `Retry-After` |
//! | 429 or 5xx without `Retry-After`, any other status | never | — |
//! | connection reset, early EOF, HTTP/2 connection lost | `get` and `list` (safe, idempotent) | 1 s |
//! | early EOF or timeout | `watch` | 1 s |
//! | any connection error | `create`, `update`, `patch`, `delete`, `deletecollection` and streams (never: the server may have acted — kube-rs #2082 saw duplicate objects) | — |
//!
//! At most [`DEFAULT_MAX_RETRIES`] (10) retries follow the first attempt. A
//! connection error counts as client-go's synthetic `500` with
//! `Retry-After: 1`. A watch that runs out of retries ends like an empty,
//! closed watch.
//!
//! ```
//! use std::time::Duration;
//! use windlass_proto::retry::{Decision, Failure, RequestKind, Retry};
//!
//! let mut retry = Retry::new(RequestKind::List);
//! let wait = Some(Duration::from_secs(2));
//! assert_eq!(retry.decide(Failure::Status { code: 429, retry_after: wait }),
//!            Decision::RetryAfter(Duration::from_secs(2)));
//! let mut create = Retry::new(RequestKind::Create);
//! assert_eq!(create.decide(Failure::ConnectionReset), Decision::GiveUp);
//! ```
//!
//! [`ConflictRetry`] is `retry.RetryOnConflict`: the adapter calls the
//! update, and on a 409 asks [`ConflictRetry::next_delay`] how long to wait
//! before reading and trying again; `None` means return the last conflict.

use std::time::Duration;

use http::HeaderValue;

use crate::rand::Rng;

/// client-go's default `maxRetries`.
pub const DEFAULT_MAX_RETRIES: u32 = 10;

/// The wait after a retryable connection error (client-go's synthetic
/// `Retry-After: 1`).
pub const CONNECTION_ERROR_WAIT: Duration = Duration::from_secs(1);

/// What kind of request failed; it decides which connection errors are safe
/// to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// GET of one object.
    Get,
    /// GET of a collection.
    List,
    /// A watch.
    Watch,
    /// POST of a new object.
    Create,
    /// PUT of an object.
    Update,
    /// PATCH of an object.
    Patch,
    /// DELETE of one object.
    Delete,
    /// DELETE of a collection.
    DeleteCollection,
    /// A streamed body (logs, exec, port-forward): never retried on a
    /// connection error.
    Stream,
}

impl RequestKind {
    /// The kind of a collection read a machine built (the reflector's list
    /// and watch requests): [`Watch`](Self::Watch) when the query asks for
    /// `watch=true` (or `1`), else [`List`](Self::List).
    pub fn of_read<B>(request: &http::Request<B>) -> Self {
        let watch = request
            .uri()
            .query()
            .unwrap_or("")
            .split('&')
            .any(|pair| pair == "watch=true" || pair == "watch=1");
        if watch { Self::Watch } else { Self::List }
    }
}

/// Why an attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The server answered with a status that is not a success.
    Status {
        /// The HTTP status code.
        code: u16,
        /// `Retry-After`, from the header ([`parse_retry_after`]) or from the
        /// Status body's `details.retryAfterSeconds`.
        retry_after: Option<Duration>,
    },
    /// The connection was reset.
    ConnectionReset,
    /// The connection closed before the response was complete (Go's
    /// "probable EOF").
    EarlyEof,
    /// An HTTP/2 connection was lost.
    Http2ConnectionLost,
    /// The request timed out.
    Timeout,
    /// The connection could not be opened (refused, DNS, TLS handshake …).
    Connect,
}

impl From<&crate::response::ApiError> for Failure {
    /// The server's answer as the policy judges it. The wait is
    /// [`ApiError::retry_after`](crate::response::ApiError::retry_after): the
    /// `Retry-After` header in seconds, else `details.retryAfterSeconds` — one
    /// rule for every adapter.
    fn from(error: &crate::response::ApiError) -> Self {
        Self::Status {
            code: error.http_status().as_u16(),
            retry_after: error.retry_after(),
        }
    }
}

/// What to do after a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Wait this long, pass the client-side limiter, and send again.
    RetryAfter(Duration),
    /// Return the failure to the caller.
    GiveUp,
}

/// The retry state of one request.
#[derive(Clone, Debug)]
pub struct Retry {
    kind: RequestKind,
    max_retries: u32,
    retries: u32,
}

impl Retry {
    /// A request of `kind` with client-go's [`DEFAULT_MAX_RETRIES`].
    pub fn new(kind: RequestKind) -> Self {
        Self::with_max_retries(kind, DEFAULT_MAX_RETRIES)
    }

    /// A request of `kind` retried at most `max_retries` times (0: never).
    pub fn with_max_retries(kind: RequestKind, max_retries: u32) -> Self {
        Self {
            kind,
            max_retries,
            retries: 0,
        }
    }

    /// How many retries were decided so far.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Decides what follows `failure` (and counts the retry if there is one).
    pub fn decide(&mut self, failure: Failure) -> Decision {
        let Some(wait) = self.wait_for(failure) else {
            return Decision::GiveUp;
        };
        if self.retries >= self.max_retries {
            return Decision::GiveUp;
        }
        self.retries += 1;
        Decision::RetryAfter(wait)
    }

    fn wait_for(&self, failure: Failure) -> Option<Duration> {
        use RequestKind::*;
        match failure {
            Failure::Status { code, retry_after } => {
                if code == 429 || code >= 500 {
                    retry_after
                } else {
                    None
                }
            }
            Failure::ConnectionReset | Failure::Http2ConnectionLost => {
                matches!(self.kind, Get | List).then_some(CONNECTION_ERROR_WAIT)
            }
            Failure::EarlyEof => {
                matches!(self.kind, Get | List | Watch).then_some(CONNECTION_ERROR_WAIT)
            }
            Failure::Timeout => matches!(self.kind, Watch).then_some(CONNECTION_ERROR_WAIT),
            Failure::Connect => None,
        }
    }
}

/// Parses a `Retry-After` header as client-go does: whole seconds, at least
/// 0. An HTTP date or anything else is not a retry hint (`None`).
pub fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    let seconds: u64 = text.parse().ok()?;
    Some(Duration::from_secs(seconds))
}

/// client-go's `wait.Backoff`: `steps` attempts in all; between them a wait
/// starting at `duration`, multiplied by `factor` after each step, capped at
/// `cap` (when set), and stretched by up to `jitter` of itself.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// The first wait.
    pub duration: Duration,
    /// The multiplier applied after each wait (0 or 1: constant).
    pub factor: f64,
    /// Each wait is `d + rand[0,1) · jitter · d` (0: none).
    pub jitter: f64,
    /// How many attempts in all.
    pub steps: u32,
    /// The longest wait before jitter, if any.
    pub cap: Option<Duration>,
}

/// `retry.DefaultRetry`: 5 attempts, 10 ms apart (+ up to 10 % jitter).
pub const DEFAULT_RETRY: Backoff = Backoff {
    duration: Duration::from_millis(10),
    factor: 1.0,
    jitter: 0.1,
    steps: 5,
    cap: None,
};

/// `retry.DefaultBackoff`: 4 attempts, waits 10, 50, 250 ms (+ up to 10 %).
pub const DEFAULT_BACKOFF: Backoff = Backoff {
    duration: Duration::from_millis(10),
    factor: 5.0,
    jitter: 0.1,
    steps: 4,
    cap: None,
};

/// `retry.RetryOnConflict` as a pure policy: the adapter makes the first
/// attempt, and after each conflict asks [`next_delay`](Self::next_delay).
#[derive(Clone, Debug)]
pub struct ConflictRetry {
    backoff: Backoff,
    attempts: u32,
    rng: Rng,
}

impl ConflictRetry {
    /// A policy following `backoff`; jitter is drawn from `rng`.
    pub fn new(backoff: Backoff, rng: Rng) -> Self {
        Self {
            backoff,
            attempts: 1,
            rng,
        }
    }

    /// Attempts made so far, counting the first.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// After a failed attempt: how long to wait before the next one, or
    /// `None` when the steps are used up (return the last conflict).
    pub fn next_delay(&mut self) -> Option<Duration> {
        if self.attempts >= self.backoff.steps {
            return None;
        }
        self.attempts += 1;
        let wait = self.backoff.duration;
        if self.backoff.factor != 0.0 {
            let next = scale(self.backoff.duration, self.backoff.factor);
            self.backoff.duration = match self.backoff.cap {
                Some(cap) => next.min(cap),
                None => next,
            };
        }
        if self.backoff.jitter > 0.0 {
            // client-go's `wait.Jitter`, saturating instead of overflowing.
            let extra = scale(wait, self.rng.next_f64() * self.backoff.jitter);
            return Some(wait.saturating_add(extra));
        }
        Some(wait)
    }
}

/// `d · factor`, saturating at [`Duration::MAX`]; a negative or NaN factor
/// gives zero.
fn scale(d: Duration, factor: f64) -> Duration {
    if factor.is_nan() || factor <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(d.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestKind::*;

    const ALL: [RequestKind; 9] = [
        Get,
        List,
        Watch,
        Create,
        Update,
        Patch,
        Delete,
        DeleteCollection,
        Stream,
    ];

    fn first(kind: RequestKind, failure: Failure) -> Decision {
        Retry::new(kind).decide(failure)
    }

    #[test]
    fn retry_status_429_and_5xx_only_with_retry_after_for_every_kind() {
        let wait = Some(Duration::from_secs(7));
        for kind in ALL {
            for code in [429, 500, 502, 503, 504, 599] {
                assert_eq!(
                    first(
                        kind,
                        Failure::Status {
                            code,
                            retry_after: wait
                        }
                    ),
                    Decision::RetryAfter(Duration::from_secs(7)),
                    "{kind:?} {code}"
                );
                assert_eq!(
                    first(
                        kind,
                        Failure::Status {
                            code,
                            retry_after: None
                        }
                    ),
                    Decision::GiveUp,
                    "{kind:?} {code} without Retry-After"
                );
            }
            for code in [400, 401, 403, 404, 409, 410, 422, 499] {
                assert_eq!(
                    first(
                        kind,
                        Failure::Status {
                            code,
                            retry_after: wait
                        }
                    ),
                    Decision::GiveUp,
                    "{kind:?} {code}"
                );
            }
        }
    }

    #[test]
    fn retry_connection_errors_only_for_safe_requests() {
        let one = Decision::RetryAfter(Duration::from_secs(1));
        let table: [(Failure, &[RequestKind]); 5] = [
            (Failure::ConnectionReset, &[Get, List]),
            (Failure::Http2ConnectionLost, &[Get, List]),
            (Failure::EarlyEof, &[Get, List, Watch]),
            (Failure::Timeout, &[Watch]),
            (Failure::Connect, &[]),
        ];
        for (failure, retried) in table {
            for kind in ALL {
                let expected = if retried.contains(&kind) {
                    one
                } else {
                    Decision::GiveUp
                };
                assert_eq!(first(kind, failure), expected, "{kind:?} {failure:?}");
            }
        }
    }

    // kube-rs #2082: a create retried after a reset connection made duplicates.
    #[test]
    fn retry_never_resends_a_create_after_a_connection_error() {
        for failure in [
            Failure::ConnectionReset,
            Failure::EarlyEof,
            Failure::Http2ConnectionLost,
            Failure::Timeout,
            Failure::Connect,
        ] {
            assert_eq!(first(Create, failure), Decision::GiveUp, "{failure:?}");
        }
    }

    #[test]
    fn retry_stops_after_ten_retries_by_default() {
        let mut retry = Retry::new(Watch);
        for n in 1..=10 {
            assert_eq!(
                retry.decide(Failure::EarlyEof),
                Decision::RetryAfter(Duration::from_secs(1)),
                "retry {n}"
            );
        }
        assert_eq!(retry.decide(Failure::EarlyEof), Decision::GiveUp);
        assert_eq!(retry.retries(), 10);

        let mut never = Retry::with_max_retries(Get, 0);
        assert_eq!(never.decide(Failure::EarlyEof), Decision::GiveUp);
    }

    #[test]
    fn retry_after_header_is_whole_seconds_only() {
        let parse = |s: &str| parse_retry_after(&HeaderValue::from_str(s).unwrap());
        assert_eq!(parse("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse("-1"), None);
        assert_eq!(parse("1.5"), None);
        assert_eq!(parse("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse("99999999999999999999999"), None);
    }

    // client-go util/retry: DefaultRetry allows at most 5 calls.
    #[test]
    fn backoff_default_retry_allows_five_attempts_ten_ms_apart() {
        let mut retry = ConflictRetry::new(DEFAULT_RETRY, Rng::new(1));
        let waits: Vec<_> = std::iter::from_fn(|| retry.next_delay()).collect();
        assert_eq!(waits.len(), 4, "five calls, four waits");
        for wait in waits {
            assert!(wait >= Duration::from_millis(10) && wait < Duration::from_millis(11));
        }
        assert_eq!(retry.attempts(), 5);
    }

    #[test]
    fn backoff_default_backoff_grows_by_five() {
        let mut retry = ConflictRetry::new(DEFAULT_BACKOFF, Rng::new(2));
        let waits: Vec<_> = std::iter::from_fn(|| retry.next_delay()).collect();
        let bases = [10, 50, 250].map(Duration::from_millis);
        assert_eq!(waits.len(), 3, "four calls, three waits");
        for (wait, base) in waits.iter().zip(bases) {
            assert!(
                *wait >= base && *wait < base.mul_f64(1.1),
                "{wait:?} vs {base:?}"
            );
        }
    }

    #[test]
    fn backoff_huge_factor_saturates_instead_of_panicking() {
        let backoff = Backoff {
            duration: Duration::from_secs(1),
            factor: 1e300,
            jitter: 1.0,
            steps: 4,
            cap: None,
        };
        let mut retry = ConflictRetry::new(backoff, Rng::new(4));
        let waits: Vec<_> = std::iter::from_fn(|| retry.next_delay()).collect();
        assert!(waits[0] >= Duration::from_secs(1) && waits[0] < Duration::from_secs(2));
        assert_eq!(&waits[1..], &[Duration::MAX, Duration::MAX]);
    }

    #[test]
    fn backoff_cap_and_no_jitter_are_exact() {
        let backoff = Backoff {
            duration: Duration::from_millis(100),
            factor: 3.0,
            jitter: 0.0,
            steps: 5,
            cap: Some(Duration::from_millis(500)),
        };
        let mut retry = ConflictRetry::new(backoff, Rng::new(3));
        let waits: Vec<_> = std::iter::from_fn(|| retry.next_delay()).collect();
        assert_eq!(waits, [100, 300, 500, 500].map(Duration::from_millis));
    }
}
