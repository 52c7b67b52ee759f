//! [`Exchange`]: one request's life across its attempts — pass the
//! client-side limiter, keep the credentials fresh, authorize, send, judge
//! what came back, re-authorize once after a 401, wait out the retry
//! policy's delay, and say when it is over. It owns the order of those steps
//! and nothing else: the limiter ([`RequestLimiter`]), the credentials
//! ([`Credentials`]), the retry policy ([`Retry`]) and the judgement of an
//! error response ([`response::api_error`]) are the existing pieces, and the
//! limiter and credentials are the client's, lent to each call because every
//! request of a client shares them.
//!
//! It does no IO and reads no clock. The driver (a runtime's send loop)
//! polls it, performs what it asks — sleep until an instant, read a token
//! file, run an exec plugin, send a request — and feeds back what happened:
//!
//! ```text
//! let mut exchange = Exchange::new(request, kind, max_retries);
//! loop {
//!     match exchange.poll_action(now(), &mut limiter, &mut credentials) {
//!         Some(Action::Wait(at)) => sleep_until(at),
//!         Some(Action::Credential(ReadTokenFile(path))) => exchange.handle_token_file(&mut credentials, read(path), now()),
//!         Some(Action::Credential(RunExec(run))) => exchange.handle_exec_output(&mut credentials, exec(run), now(), wall_now()),
//!         Some(Action::Send(attempt)) => {
//!             let outcome = match send(attempt.request) {
//!                 Ok(response) if is_success(response.status()) => Outcome::Success(response),
//!                 Ok(response) => Outcome::Error(head, read_body_bounded(body)),
//!                 Err(error) => Outcome::Failed(failure_of(&error), error),
//!             };
//!             exchange.handle_outcome(outcome, now());
//!         }
//!         Some(Action::Finish(result)) => return result,
//!         None => unreachable!("every input is followed by an action"),
//!     }
//! }
//! ```
//!
//! | state | `poll_action` | goes to |
//! |---|---|---|
//! | `Reserve` (start; after a retry wait; after a 401 re-authorization) | reserves a limiter slot at `now` | `Throttled(at)` |
//! | `Throttled(at)`, `now < at` | `Wait(at)` | `Throttled(at)` |
//! | `Throttled(at)`, `now >= at` | — | `Authorize` |
//! | `Authorize`, the credentials have an action | `Credential(action)` | `Refreshing` |
//! | `Authorize`, no credential to send with | `Finish(Err(Credentials))` | `Finished` |
//! | `Authorize` | `Send(attempt n)`, headers added, generation kept | `Sent(generation)` |
//! | `Refreshing` | `None` until `handle_token_file` / `handle_exec_output` | `Authorize` |
//! | `Sent` | `None` until `handle_success` / `handle_error_response` / `handle_failure` | `Done` or `Failed` |
//! | `Failed`, a 401 with the current credential, not re-authorized yet | — (the credentials drop it) | `Reserve` |
//! | `Failed`, the policy retries after `d` | `Wait(failed_at + d)` | `Backoff` |
//! | `Failed`, the policy gives up | `Finish(Err(..))` | `Finished` |
//! | `Backoff(at)`, `now < at` | `Wait(at)` | `Backoff(at)` |
//! | `Backoff(at)`, `now >= at` | — | `Reserve` |
//! | `Done` | `Finish(Ok(response))` | `Finished` |
//!
//! A 401 re-authorization is not a retry (client-go does not count it
//! either); it happens at most once per exchange.
//!
//! Several exchanges share one [`Credentials`]: while one runs an exec
//! plugin, another must wait for its result rather than send without a
//! credential. A driver that runs exchanges concurrently holds a lock of its
//! own around every poll for which [`Exchange::may_use_credentials`] is true
//! and keeps it while it performs a [`Action::Credential`].

use std::io;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};

use crate::config::{AuthError, CredentialAction, Credentials, ExecOutcome};
use crate::flowcontrol::RequestLimiter;
use crate::response::{self, ApiError};
use crate::retry::{Decision, Failure, RequestKind, Retry};

/// What the driver does next.
#[derive(Debug)]
pub enum Action<R, E> {
    /// Sleep until this instant (a limiter slot or a retry delay), then poll.
    Wait(Instant),
    /// Perform this credential action and feed its result back with
    /// [`Exchange::handle_token_file`] or [`Exchange::handle_exec_output`].
    Credential(CredentialAction),
    /// Send this attempt and feed back its outcome.
    Send(Attempt),
    /// The exchange is over: return this.
    Finish(Result<R, ExchangeError<E>>),
}

/// One attempt to send.
#[derive(Debug)]
pub struct Attempt {
    /// 1 for the first attempt, then 2, 3, …
    pub number: u32,
    /// The request with the credentials' `Authorization` and
    /// `Impersonate-*` headers added.
    pub request: Request<Bytes>,
}

/// What one attempt came back with, as the driver saw it (the input of
/// [`Exchange::handle_outcome`]).
#[derive(Debug)]
pub enum Outcome<R, E> {
    /// A success ([`is_success`]): the driver's response, its body unread.
    Success(R),
    /// Any other status: the head, and the body read whole (within the
    /// driver's body limit).
    Error(http::response::Parts, Bytes),
    /// No whole answer (no connection, a reset, a timeout, an error body cut
    /// short): the driver's error, and how the retry policy sees it.
    Failed(E, Failure),
}

/// Why an exchange failed, with what the caller needs: the last failure and
/// how many attempts were sent.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError<E> {
    /// The server's answer to the last attempt: not a success, and not
    /// retried (or no retries left).
    #[error("{error} (after {attempts} attempt(s))")]
    Status {
        /// The server's `Status`, kept whole.
        error: Box<ApiError>,
        /// Attempts sent.
        attempts: u32,
    },
    /// The last attempt failed in the transport, and the policy gives up.
    #[error("{failure:?} (after {attempts} attempt(s))")]
    Transport {
        /// The driver's error for that attempt, as it handed it in.
        error: E,
        /// How the retry policy saw it.
        failure: Failure,
        /// Attempts sent.
        attempts: u32,
    },
    /// No credential to send with (an exec plugin that failed, a token that
    /// is no header value).
    #[error("credentials: {error} (after {attempts} attempt(s))")]
    Credentials {
        /// What is wrong.
        error: AuthError,
        /// Attempts sent before it.
        attempts: u32,
    },
}

impl<E> ExchangeError<E> {
    /// How many attempts were sent.
    pub fn attempts(&self) -> u32 {
        match self {
            Self::Status { attempts, .. }
            | Self::Transport { attempts, .. }
            | Self::Credentials { attempts, .. } => *attempts,
        }
    }

    /// How the last attempt failed, in the retry policy's words (`None`:
    /// none was judged, the credentials failed first).
    pub fn failure(&self) -> Option<Failure> {
        match self {
            Self::Status { error, .. } => Some(Failure::from(&**error)),
            Self::Transport { failure, .. } => Some(*failure),
            Self::Credentials { .. } => None,
        }
    }

    /// The driver's own error type: the transport error as it was handed
    /// in, the others converted.
    pub fn into_error(self) -> E
    where
        E: From<ApiError> + From<AuthError>,
    {
        match self {
            Self::Status { error, .. } => E::from(*error),
            Self::Transport { error, .. } => error,
            Self::Credentials { error, .. } => E::from(error),
        }
    }
}

/// Whether a response is the answer to return as it is, its body unread: a
/// 2xx, or 101 Switching Protocols. Any other status is judged by
/// [`Exchange::handle_error_response`] with its (bounded) body.
pub fn is_success(status: StatusCode) -> bool {
    status.is_success() || status == StatusCode::SWITCHING_PROTOCOLS
}

/// One request's lifecycle across attempts. `R` is the driver's response (its
/// body unread), `E` the driver's error for a failed attempt; the exchange
/// hands them back in [`Action::Finish`]. See the module doc.
#[derive(Debug)]
pub struct Exchange<R, E> {
    request: Request<Bytes>,
    retry: Retry,
    attempts: u32,
    reauthorized: bool,
    state: State<R, E>,
}

#[derive(Debug)]
enum State<R, E> {
    Reserve,
    Throttled(Instant),
    Authorize,
    Refreshing,
    Sent {
        generation: u64,
    },
    Failed {
        at: Instant,
        generation: u64,
        failure: Failure,
        cause: Cause<E>,
    },
    Backoff(Instant),
    Done(Result<R, ExchangeError<E>>),
    Finished,
}

/// What made an attempt fail, kept to be returned if the policy gives up.
#[derive(Debug)]
enum Cause<E> {
    Status(Box<ApiError>),
    Transport(E),
}

impl<R, E> Exchange<R, E> {
    /// An exchange for `request` (as it goes on the wire, without
    /// credentials: see [`Endpoint::prepare`](crate::endpoint::Endpoint::prepare)),
    /// judged by the retry policy for `kind`, retried at most `max_retries`
    /// times.
    pub fn new(request: Request<Bytes>, kind: RequestKind, max_retries: u32) -> Self {
        Self {
            request,
            retry: Retry::with_max_retries(kind, max_retries),
            attempts: 0,
            reauthorized: false,
            state: State::Reserve,
        }
    }

    // --- getters

    /// Attempts sent so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Retries the policy granted so far (a 401 re-authorization is not one).
    pub fn retries(&self) -> u32 {
        self.retry.retries()
    }

    /// Whether the next [`poll_action`](Self::poll_action) may consult the
    /// shared credentials: hand out a credential action or authorize an
    /// attempt. False while an attempt is out and once it is over.
    pub fn may_use_credentials(&self) -> bool {
        !matches!(
            self.state,
            State::Sent { .. } | State::Done(_) | State::Finished
        )
    }

    // --- inputs

    /// The token file was read (for [`CredentialAction::ReadTokenFile`]).
    pub fn handle_token_file(
        &mut self,
        credentials: &mut Credentials,
        result: io::Result<Vec<u8>>,
        now: Instant,
    ) {
        credentials.handle_token_file(result, now);
        self.credential_done();
    }

    /// The exec plugin ran (for [`CredentialAction::RunExec`]). `now` and
    /// `wall_now` are the same moment on both clocks. A failure is kept by
    /// the credentials and ends the exchange when it authorizes.
    pub fn handle_exec_output(
        &mut self,
        credentials: &mut Credentials,
        outcome: ExecOutcome,
        now: Instant,
        wall_now: SystemTime,
    ) {
        // The error comes back from `authorize`, with the attempt count.
        let _ = credentials.handle_exec_output(outcome, now, wall_now);
        self.credential_done();
    }

    /// What the attempt came back with: one of the three inputs below.
    pub fn handle_outcome(&mut self, outcome: Outcome<R, E>, now: Instant) {
        match outcome {
            Outcome::Success(response) => self.handle_success(response, now),
            Outcome::Error(head, body) => {
                self.handle_error_response(head.status, &head.headers, &body, now);
            }
            Outcome::Failed(error, failure) => self.handle_failure(failure, error, now),
        }
    }

    /// The attempt's answer is a success ([`is_success`]): `response` is
    /// what [`Action::Finish`] hands back.
    pub fn handle_success(&mut self, response: R, now: Instant) {
        let _ = now;
        if let State::Sent { .. } = self.state {
            self.state = State::Done(Ok(response));
        }
    }

    /// The attempt's answer is not a success: its status, headers and body
    /// (read whole, within the driver's body limit). A Kubernetes `Status`
    /// body is kept whole; `Retry-After` (header or
    /// `details.retryAfterSeconds`) sets the wait.
    pub fn handle_error_response(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        now: Instant,
    ) {
        let State::Sent { generation } = self.state else {
            return;
        };
        let error = response::api_error(self.request.method(), status, headers, body)
            .unwrap_or_else(|| ApiError::from_status(Default::default(), status, headers));
        self.state = State::Failed {
            at: now,
            generation,
            failure: Failure::from(&error),
            cause: Cause::Status(Box::new(error)),
        };
    }

    /// The attempt failed before a whole answer arrived (no connection, a
    /// reset, a timeout, an error body cut short): `failure` is how the
    /// retry policy sees it, `error` the driver's own, returned if it gives up.
    pub fn handle_failure(&mut self, failure: Failure, error: E, now: Instant) {
        let State::Sent { generation } = self.state else {
            return;
        };
        self.state = State::Failed {
            at: now,
            generation,
            failure,
            cause: Cause::Transport(error),
        };
    }

    fn credential_done(&mut self) {
        if let State::Refreshing = self.state {
            self.state = State::Authorize;
        }
    }

    // --- outputs

    /// What to do next at `now`, with the client's limiter and credentials.
    /// `None` while the exchange waits for an input (a credential action's
    /// result, an attempt's outcome) or after it finished.
    pub fn poll_action(
        &mut self,
        now: Instant,
        limiter: &mut RequestLimiter,
        credentials: &mut Credentials,
    ) -> Option<Action<R, E>> {
        loop {
            match std::mem::replace(&mut self.state, State::Finished) {
                State::Reserve => self.state = State::Throttled(limiter.reserve(now)),
                State::Throttled(at) if now < at => {
                    self.state = State::Throttled(at);
                    return Some(Action::Wait(at));
                }
                State::Throttled(_) => self.state = State::Authorize,
                State::Authorize => return Some(self.authorize(now, credentials)),
                State::Refreshing => {
                    self.state = State::Refreshing;
                    return None;
                }
                state @ State::Sent { .. } => {
                    self.state = state;
                    return None;
                }
                State::Failed {
                    at,
                    generation,
                    failure,
                    cause,
                } => {
                    if let Some(action) = self.judge(at, generation, failure, cause, credentials) {
                        return Some(action);
                    }
                }
                State::Backoff(at) if now < at => {
                    self.state = State::Backoff(at);
                    return Some(Action::Wait(at));
                }
                State::Backoff(_) => self.state = State::Reserve,
                State::Done(result) => return Some(Action::Finish(result)),
                State::Finished => return None,
            }
        }
    }

    /// The credentials' action if they have one, else the next attempt with
    /// their headers (or the end, when there is no credential to send with).
    fn authorize(&mut self, now: Instant, credentials: &mut Credentials) -> Action<R, E> {
        if let Some(action) = credentials.poll_action(now) {
            self.state = State::Refreshing;
            return Action::Credential(action);
        }
        let mut request = self.request.clone();
        match credentials.authorize(request.headers_mut()) {
            Ok(generation) => {
                self.attempts += 1;
                self.state = State::Sent { generation };
                Action::Send(Attempt {
                    number: self.attempts,
                    request,
                })
            }
            Err(error) => Action::Finish(Err(ExchangeError::Credentials {
                error,
                attempts: self.attempts,
            })),
        }
    }

    /// After a failed attempt: re-authorize after a 401 (once), else ask the
    /// retry policy. `None` when the next state has more to say at once.
    fn judge(
        &mut self,
        at: Instant,
        generation: u64,
        failure: Failure,
        cause: Cause<E>,
        credentials: &mut Credentials,
    ) -> Option<Action<R, E>> {
        let unauthorized = matches!(failure, Failure::Status { code: 401, .. });
        if unauthorized && !self.reauthorized && credentials.handle_unauthorized(generation) {
            tracing::debug!(
                attempts = self.attempts,
                "401 with the current credential: refreshing it and sending again"
            );
            self.reauthorized = true;
            self.state = State::Reserve;
            return None;
        }
        match self.retry.decide(failure) {
            Decision::RetryAfter(wait) => {
                tracing::debug!(?wait, ?failure, retries = self.retry.retries(), "retrying");
                self.state = State::Backoff(at.checked_add(wait).unwrap_or(at));
                None
            }
            Decision::GiveUp => {
                let attempts = self.attempts;
                Some(Action::Finish(Err(match cause {
                    Cause::Status(error) => ExchangeError::Status { error, attempts },
                    Cause::Transport(error) => ExchangeError::Transport {
                        error,
                        failure,
                        attempts,
                    },
                })))
            }
        }
    }
}

#[cfg(test)]
mod tests;
