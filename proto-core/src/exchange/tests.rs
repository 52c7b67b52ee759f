//! The exchange driven by a fake client: a clock that only moves when a test
//! moves it, a limiter and credentials as a runtime's client holds them.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::header::{AUTHORIZATION, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};

use super::*;
use crate::config::{
    AuthConfig, ExecApiVersion, ExecPlugin, Impersonation, InteractiveMode, Secret,
    TOKEN_FILE_REFRESH,
};
use crate::flowcontrol::FlowControl;
use crate::response::MAX_RETRY_AFTER;

/// The driver's response and error in these tests: a label.
type Ex = Exchange<&'static str, String>;

/// What a runtime's client holds, with a clock of its own.
struct FakeClient {
    now: Instant,
    wall: SystemTime,
    limiter: RequestLimiter,
    credentials: Credentials,
}

impl FakeClient {
    fn new(auth: AuthConfig) -> Self {
        let now = Instant::now();
        Self {
            now,
            wall: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            limiter: RequestLimiter::disabled(),
            credentials: Credentials::new(&auth, &Impersonation::default(), false, now),
        }
    }

    fn with_limiter(mut self, qps: f64, burst: u32) -> Self {
        self.limiter = RequestLimiter::new(FlowControl { qps, burst });
        self
    }

    fn poll(&mut self, exchange: &mut Ex) -> Option<Action<&'static str, String>> {
        exchange.poll_action(self.now, &mut self.limiter, &mut self.credentials)
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.wall += by;
    }

    /// Polls and expects an attempt; returns its number and `Authorization`.
    fn expect_send(&mut self, exchange: &mut Ex) -> (u32, Option<String>) {
        match self.poll(exchange) {
            Some(Action::Send(attempt)) => {
                let auth = attempt
                    .request
                    .headers()
                    .get(AUTHORIZATION)
                    .map(|v| v.to_str().unwrap().to_owned());
                (attempt.number, auth)
            }
            other => panic!("expected an attempt, got {other:?}"),
        }
    }

    /// Polls and expects a wait; returns how long from now.
    fn expect_wait(&mut self, exchange: &mut Ex) -> Duration {
        match self.poll(exchange) {
            Some(Action::Wait(at)) => at - self.now,
            other => panic!("expected a wait, got {other:?}"),
        }
    }

    /// Polls, expects an exec run, and answers it with a credential for
    /// `token` (expiring `expires_in` from now, if given).
    fn run_exec(&mut self, exchange: &mut Ex, token: &str, expires_in: Option<Duration>) {
        match self.poll(exchange) {
            Some(Action::Credential(CredentialAction::RunExec(_))) => {}
            other => panic!("expected an exec run, got {other:?}"),
        }
        let mut status = serde_json::json!({ "token": token });
        if let Some(left) = expires_in {
            let at = self.wall + left;
            let secs = at.duration_since(UNIX_EPOCH).unwrap().as_secs();
            status["expirationTimestamp"] = rfc3339(secs).into();
        }
        let credential = serde_json::json!({
            "apiVersion": "client.authentication.k8s.io/v1",
            "kind": "ExecCredential",
            "status": status,
        });
        let outcome = ExecOutcome::Exited {
            status: Some(0),
            stdout: Secret::new(credential.to_string().into_bytes()),
        };
        exchange.handle_exec_output(&mut self.credentials, outcome, self.now, self.wall);
    }

    fn finish(&mut self, exchange: &mut Ex) -> Result<&'static str, ExchangeError<String>> {
        match self.poll(exchange) {
            Some(Action::Finish(result)) => result,
            other => panic!("expected the end, got {other:?}"),
        }
    }
}

/// Whole seconds since the epoch as RFC 3339 (UTC), for an `ExecCredential`.
fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rest = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

fn exec_auth() -> AuthConfig {
    AuthConfig::Exec(Box::new(ExecPlugin {
        command: "credential-plugin".into(),
        args: vec![],
        env: vec![],
        api_version: ExecApiVersion::V1,
        install_hint: None,
        interactive_mode: InteractiveMode::Never,
        cluster_info: None,
    }))
}

fn bearer(token: &str) -> AuthConfig {
    AuthConfig::Bearer {
        token: Secret::new(token.into()),
        file: None,
    }
}

fn exchange(method: Method, kind: RequestKind, max_retries: u32) -> Ex {
    let request = Request::builder()
        .method(method)
        .uri("https://k8s.example/api/v1/namespaces/default/configmaps")
        .body(Bytes::new())
        .unwrap();
    Exchange::new(request, kind, max_retries)
}

fn get() -> Ex {
    exchange(Method::GET, RequestKind::Get, 10)
}

fn status_body(code: u16, reason: &str) -> Vec<u8> {
    serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "status": "Failure",
        "reason": reason, "code": code, "message": reason,
    })
    .to_string()
    .into_bytes()
}

fn answer(client: &FakeClient, exchange: &mut Ex, code: u16, retry_after: Option<&str>) {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    if let Some(value) = retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
    }
    let status = StatusCode::from_u16(code).unwrap();
    exchange.handle_error_response(status, &headers, &status_body(code, "Failing"), client.now);
}

#[test]
fn exchange_success_finishes_with_the_response_after_one_attempt() {
    let mut client = FakeClient::new(bearer("abc"));
    let mut exchange = get();
    assert_eq!(
        client.expect_send(&mut exchange),
        (1, Some("Bearer abc".into()))
    );
    assert!(!exchange.may_use_credentials(), "an attempt is out");
    assert!(
        client.poll(&mut exchange).is_none(),
        "waiting for the outcome"
    );
    exchange.handle_success("the response", client.now);
    assert_eq!(client.finish(&mut exchange).unwrap(), "the response");
    assert!(client.poll(&mut exchange).is_none(), "finished");
    assert_eq!(exchange.attempts(), 1);
}

#[test]
fn exchange_limiter_wait_comes_first() {
    // One slot a second, and an exec plugin that has not run yet: the
    // limiter is asked first, and the plugin runs once the slot is due.
    let mut client = FakeClient::new(exec_auth()).with_limiter(1.0, 1);
    let mut first = get();
    client.run_exec(&mut first, "t1", None);
    assert_eq!(client.expect_send(&mut first).0, 1);

    let mut second = get();
    assert_eq!(client.expect_wait(&mut second), Duration::from_secs(1));
    // Polled early (a spurious wake-up), it waits for the same instant.
    assert_eq!(client.expect_wait(&mut second), Duration::from_secs(1));
    client.advance(Duration::from_secs(1));
    assert_eq!(
        client.expect_send(&mut second),
        (1, Some("Bearer t1".into()))
    );
}

#[test]
fn exchange_limiter_is_passed_again_before_each_retry() {
    let mut client = FakeClient::new(AuthConfig::None).with_limiter(1.0, 1);
    let mut exchange = get();
    assert_eq!(client.expect_send(&mut exchange).0, 1);
    answer(&client, &mut exchange, 503, Some("0"));
    // No retry delay, but the bucket is empty: a second's wait for a slot.
    assert_eq!(client.expect_wait(&mut exchange), Duration::from_secs(1));
    client.advance(Duration::from_secs(1));
    assert_eq!(client.expect_send(&mut exchange).0, 2);
}

#[test]
fn exchange_credential_action_runs_before_the_first_attempt() {
    let mut client = FakeClient::new(exec_auth());
    let mut exchange = get();
    assert!(exchange.may_use_credentials());
    client.run_exec(&mut exchange, "from-plugin", None);
    assert!(
        client
            .poll(&mut get())
            .is_some_and(|a| matches!(a, Action::Send(_))),
        "a second exchange finds the credential fresh"
    );
    assert_eq!(
        client.expect_send(&mut exchange),
        (1, Some("Bearer from-plugin".into()))
    );
}

#[test]
fn exchange_waits_for_the_credential_action_result() {
    let mut client = FakeClient::new(exec_auth());
    let mut exchange = get();
    assert!(matches!(
        client.poll(&mut exchange),
        Some(Action::Credential(CredentialAction::RunExec(_)))
    ));
    assert!(
        client.poll(&mut exchange).is_none(),
        "no attempt before the result"
    );
    assert!(exchange.may_use_credentials());
}

#[test]
fn exchange_failed_exec_plugin_ends_with_a_credentials_error() {
    let mut client = FakeClient::new(exec_auth());
    let mut exchange = get();
    assert!(matches!(
        client.poll(&mut exchange),
        Some(Action::Credential(CredentialAction::RunExec(_)))
    ));
    let (now, wall) = (client.now, client.wall);
    exchange.handle_exec_output(&mut client.credentials, ExecOutcome::NotFound, now, wall);
    match client.finish(&mut exchange) {
        Err(ExchangeError::Credentials {
            error: AuthError::ExecNotFound { command, .. },
            attempts: 0,
        }) => assert_eq!(command, "credential-plugin"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn exchange_expired_exec_credential_is_refreshed_before_the_next_attempt() {
    let mut client = FakeClient::new(exec_auth());
    let mut first = get();
    client.run_exec(&mut first, "short-lived", Some(Duration::from_secs(60)));
    assert_eq!(
        client.expect_send(&mut first).1.as_deref(),
        Some("Bearer short-lived")
    );
    client.advance(Duration::from_secs(30));
    assert_eq!(
        client.expect_send(&mut get()).1.as_deref(),
        Some("Bearer short-lived")
    );
    client.advance(Duration::from_secs(30));
    let mut later = get();
    client.run_exec(&mut later, "renewed", None);
    assert_eq!(
        client.expect_send(&mut later),
        (1, Some("Bearer renewed".into()))
    );
}

#[test]
fn exchange_429_with_retry_after_waits_that_long() {
    let mut client = FakeClient::new(AuthConfig::None);
    let mut exchange = get();
    client.expect_send(&mut exchange);
    answer(&client, &mut exchange, 429, Some("7"));
    assert_eq!(client.expect_wait(&mut exchange), Duration::from_secs(7));
    client.advance(Duration::from_secs(6));
    assert_eq!(client.expect_wait(&mut exchange), Duration::from_secs(1));
    client.advance(Duration::from_secs(1));
    assert_eq!(client.expect_send(&mut exchange).0, 2);
    exchange.handle_success("ok", client.now);
    assert_eq!(client.finish(&mut exchange).unwrap(), "ok");
    assert_eq!((exchange.attempts(), exchange.retries()), (2, 1));
}

#[test]
fn exchange_429_retry_after_from_a_hostile_server_is_capped() {
    let mut client = FakeClient::new(AuthConfig::None);
    let mut exchange = get();
    client.expect_send(&mut exchange);
    answer(&client, &mut exchange, 429, Some("604800"));
    assert_eq!(client.expect_wait(&mut exchange), MAX_RETRY_AFTER);
}

#[test]
fn exchange_429_retry_after_in_the_status_details_counts_too() {
    let mut client = FakeClient::new(AuthConfig::None);
    let mut exchange = get();
    client.expect_send(&mut exchange);
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "TooManyRequests",
        "code": 429, "details": {"retryAfterSeconds": 3},
    })
    .to_string();
    exchange.handle_error_response(
        StatusCode::TOO_MANY_REQUESTS,
        &HeaderMap::new(),
        body.as_bytes(),
        client.now,
    );
    assert_eq!(client.expect_wait(&mut exchange), Duration::from_secs(3));
}

#[test]
fn exchange_5xx_retried_only_with_retry_after_and_connection_errors_only_for_safe_kinds() {
    use RequestKind::*;
    let writes = [
        (Method::POST, Create),
        (Method::PUT, Update),
        (Method::PATCH, Patch),
        (Method::DELETE, Delete),
    ];
    let reads = [(Method::GET, Get), (Method::GET, List)];
    // A 503 with Retry-After says the server did not act: every kind waits and resends.
    for (method, kind) in reads.iter().chain(&writes).cloned() {
        let mut client = FakeClient::new(AuthConfig::None);
        let mut exchange = exchange(method, kind, 10);
        client.expect_send(&mut exchange);
        answer(&client, &mut exchange, 503, Some("2"));
        assert_eq!(
            client.expect_wait(&mut exchange),
            Duration::from_secs(2),
            "{kind:?}"
        );
    }
    // A 500 without one is the answer, for every kind.
    for (method, kind) in reads.iter().chain(&writes).cloned() {
        let mut client = FakeClient::new(AuthConfig::None);
        let mut exchange = exchange(method, kind, 10);
        client.expect_send(&mut exchange);
        answer(&client, &mut exchange, 500, None);
        match client.finish(&mut exchange) {
            Err(ExchangeError::Status { error, attempts: 1 }) => {
                assert_eq!(error.http_status(), StatusCode::INTERNAL_SERVER_ERROR)
            }
            other => panic!("{kind:?}: {other:?}"),
        }
    }
    // A connection cut before the answer: only reads are sent again.
    for (method, kind) in reads.iter().cloned() {
        let mut client = FakeClient::new(AuthConfig::None);
        let mut exchange = exchange(method, kind, 10);
        client.expect_send(&mut exchange);
        exchange.handle_failure(Failure::ConnectionReset, "reset".into(), client.now);
        assert_eq!(
            client.expect_wait(&mut exchange),
            Duration::from_secs(1),
            "{kind:?}"
        );
    }
    for (method, kind) in writes.iter().cloned() {
        let mut client = FakeClient::new(AuthConfig::None);
        let mut exchange = exchange(method, kind, 10);
        client.expect_send(&mut exchange);
        exchange.handle_failure(Failure::ConnectionReset, "reset".into(), client.now);
        assert!(client.finish(&mut exchange).is_err(), "{kind:?}");
    }
}

// kube-rs #2082: a create retried after a reset connection made duplicates.
#[test]
fn exchange_never_resends_a_create_after_a_connection_error() {
    for failure in [
        Failure::ConnectionReset,
        Failure::EarlyEof,
        Failure::Http2ConnectionLost,
        Failure::Timeout,
        Failure::Connect,
    ] {
        let mut client = FakeClient::new(AuthConfig::None);
        let mut exchange = exchange(Method::POST, RequestKind::Create, 10);
        assert_eq!(client.expect_send(&mut exchange).0, 1);
        exchange.handle_failure(failure, "the driver's error".into(), client.now);
        match client.finish(&mut exchange) {
            Err(ExchangeError::Transport {
                error,
                failure: seen,
                attempts: 1,
            }) => {
                assert_eq!(error, "the driver's error");
                assert_eq!(seen, failure);
            }
            other => panic!("{failure:?}: {other:?}"),
        }
        assert!(
            client.poll(&mut exchange).is_none(),
            "nothing after the end"
        );
    }
}

#[test]
fn exchange_error_body_cut_short_is_an_early_eof() {
    let mut client = FakeClient::new(AuthConfig::None);
    let mut list = exchange(Method::GET, RequestKind::List, 10);
    client.expect_send(&mut list);
    list.handle_failure(Failure::EarlyEof, "body cut".into(), client.now);
    assert_eq!(client.expect_wait(&mut list), Duration::from_secs(1));
}

#[test]
fn exchange_401_reauthorizes_once_with_a_refreshed_credential_then_gives_up() {
    let mut client = FakeClient::new(exec_auth());
    let mut exchange = get();
    client.run_exec(&mut exchange, "revoked", None);
    assert_eq!(
        client.expect_send(&mut exchange),
        (1, Some("Bearer revoked".into()))
    );
    answer(&client, &mut exchange, 401, None);
    // The credential is dropped and the plugin runs again, with no retry delay.
    client.run_exec(&mut exchange, "also-revoked", None);
    assert_eq!(
        client.expect_send(&mut exchange),
        (2, Some("Bearer also-revoked".into()))
    );
    answer(&client, &mut exchange, 401, None);
    match client.finish(&mut exchange) {
        Err(ExchangeError::Status { error, attempts: 2 }) => assert!(error.is_unauthorized()),
        other => panic!("{other:?}"),
    }
    assert_eq!(exchange.retries(), 0, "a re-authorization is not a retry");
}

#[test]
fn exchange_401_with_a_refreshed_credential_succeeds() {
    let mut client = FakeClient::new(exec_auth());
    let mut exchange = exchange(Method::POST, RequestKind::Create, 10);
    client.run_exec(&mut exchange, "old", None);
    client.expect_send(&mut exchange);
    answer(&client, &mut exchange, 401, None);
    client.run_exec(&mut exchange, "new", None);
    assert_eq!(
        client.expect_send(&mut exchange),
        (2, Some("Bearer new".into()))
    );
    exchange.handle_success("created", client.now);
    assert_eq!(client.finish(&mut exchange).unwrap(), "created");
}

#[test]
fn exchange_401_with_a_static_token_is_the_answer() {
    let mut client = FakeClient::new(bearer("wrong"));
    let mut exchange = get();
    client.expect_send(&mut exchange);
    answer(&client, &mut exchange, 401, None);
    match client.finish(&mut exchange) {
        Err(ExchangeError::Status { error, attempts: 1 }) => assert!(error.is_unauthorized()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn exchange_401_for_an_older_credential_does_not_rerun_the_plugin() {
    // Another request already refreshed the credential: this one's 401 was
    // for the previous generation, so the plugin does not run again, and the
    // retry policy (a 401 is never retried) has the last word.
    let mut client = FakeClient::new(exec_auth());
    let mut slow = get();
    client.run_exec(&mut slow, "old", None);
    client.expect_send(&mut slow);
    let mut other = get();
    client.expect_send(&mut other);
    answer(&client, &mut other, 401, None);
    client.run_exec(&mut other, "new", None);
    client.expect_send(&mut other);
    answer(&client, &mut slow, 401, None);
    assert!(matches!(
        client.finish(&mut slow),
        Err(ExchangeError::Status { attempts: 1, .. })
    ));
}

#[test]
fn exchange_stops_after_max_retries() {
    let mut client = FakeClient::new(AuthConfig::None);
    let mut exchange = exchange(Method::GET, RequestKind::List, 3);
    for n in 1..=4 {
        assert_eq!(client.expect_send(&mut exchange).0, n);
        exchange.handle_failure(Failure::EarlyEof, format!("eof {n}"), client.now);
        if n < 4 {
            assert_eq!(client.expect_wait(&mut exchange), Duration::from_secs(1));
            client.advance(Duration::from_secs(1));
        }
    }
    let error = client.finish(&mut exchange).unwrap_err();
    assert_eq!(error.attempts(), 4);
    assert_eq!(error.failure(), Some(Failure::EarlyEof));
    assert!(matches!(error, ExchangeError::Transport { ref error, .. } if error == "eof 4"));
    assert_eq!(exchange.retries(), 3);
}

#[test]
fn exchange_token_file_rotation_is_read_before_an_attempt_when_due() {
    let path = PathBuf::from("/var/run/secrets/kubernetes.io/serviceaccount/token");
    let mut client = FakeClient::new(AuthConfig::Bearer {
        token: Secret::new("first".into()),
        file: Some(path.clone()),
    });
    let mut early = get();
    assert_eq!(
        client.expect_send(&mut early).1.as_deref(),
        Some("Bearer first")
    );

    client.advance(TOKEN_FILE_REFRESH);
    let mut due = get();
    match client.poll(&mut due) {
        Some(Action::Credential(CredentialAction::ReadTokenFile(asked))) => assert_eq!(asked, path),
        other => panic!("expected a token file read, got {other:?}"),
    }
    let now = client.now;
    due.handle_token_file(&mut client.credentials, Ok(b"rotated\n".to_vec()), now);
    assert_eq!(
        client.expect_send(&mut due),
        (1, Some("Bearer rotated".into()))
    );

    // A failed read keeps the token it had.
    client.advance(TOKEN_FILE_REFRESH);
    let mut unreadable = get();
    assert!(matches!(
        client.poll(&mut unreadable),
        Some(Action::Credential(CredentialAction::ReadTokenFile(_)))
    ));
    let missing = Err(io::Error::new(io::ErrorKind::NotFound, "gone"));
    let now = client.now;
    unreadable.handle_token_file(&mut client.credentials, missing, now);
    assert_eq!(
        client.expect_send(&mut unreadable).1.as_deref(),
        Some("Bearer rotated")
    );
}

#[test]
fn exchange_attempt_keeps_the_request_and_adds_impersonation() {
    let now = Instant::now();
    let impersonation = Impersonation {
        user: Some("jane".into()),
        ..Default::default()
    };
    let mut client = FakeClient::new(AuthConfig::None);
    client.credentials = Credentials::new(&bearer("abc"), &impersonation, false, now);
    let request = Request::post("https://k8s.example/api/v1/namespaces/default/configmaps")
        .header("content-type", "application/json")
        .body(Bytes::from_static(b"{}"))
        .unwrap();
    let mut exchange: Ex = Exchange::new(request, RequestKind::Create, 10);
    let Some(Action::Send(attempt)) = client.poll(&mut exchange) else {
        panic!("expected an attempt");
    };
    let (head, body) = attempt.request.into_parts();
    assert_eq!(head.method, Method::POST);
    assert_eq!(
        head.uri,
        "https://k8s.example/api/v1/namespaces/default/configmaps"
    );
    assert_eq!(head.headers["content-type"], "application/json");
    assert_eq!(head.headers[AUTHORIZATION], "Bearer abc");
    assert_eq!(head.headers["impersonate-user"], "jane");
    assert_eq!(body.as_ref(), b"{}");
}

#[test]
fn exchange_error_converts_into_the_drivers_error() {
    #[derive(Debug, PartialEq)]
    enum DriverError {
        Api(u16),
        Auth,
        Io(&'static str),
    }
    impl From<ApiError> for DriverError {
        fn from(e: ApiError) -> Self {
            Self::Api(e.code())
        }
    }
    impl From<AuthError> for DriverError {
        fn from(_: AuthError) -> Self {
            Self::Auth
        }
    }
    let api = ApiError::from_status(Default::default(), StatusCode::CONFLICT, &HeaderMap::new());
    let status: ExchangeError<DriverError> = ExchangeError::Status {
        error: Box::new(api),
        attempts: 1,
    };
    assert_eq!(status.into_error(), DriverError::Api(409));
    let io: ExchangeError<DriverError> = ExchangeError::Transport {
        error: DriverError::Io("reset"),
        failure: Failure::ConnectionReset,
        attempts: 2,
    };
    assert_eq!(io.to_string(), "ConnectionReset (after 2 attempt(s))");
    assert_eq!(io.into_error(), DriverError::Io("reset"));
    let auth: ExchangeError<DriverError> = ExchangeError::Credentials {
        error: AuthError::NotReady,
        attempts: 0,
    };
    assert_eq!(auth.into_error(), DriverError::Auth);
}

#[test]
fn exchange_handle_outcome_feeds_each_kind_of_outcome() {
    let mut client = FakeClient::new(AuthConfig::None);
    let mut exchange = get();
    client.expect_send(&mut exchange);
    let (head, ()) = http::Response::builder()
        .status(503)
        .header(RETRY_AFTER, "4")
        .body(())
        .unwrap()
        .into_parts();
    exchange.handle_outcome(
        Outcome::Error(head, Bytes::from_static(b"busy")),
        client.now,
    );
    assert_eq!(client.expect_wait(&mut exchange), Duration::from_secs(4));
    client.advance(Duration::from_secs(4));
    client.expect_send(&mut exchange);
    exchange.handle_outcome(Outcome::Failed("cut".into(), Failure::EarlyEof), client.now);
    assert_eq!(client.expect_wait(&mut exchange), Duration::from_secs(1));
    client.advance(Duration::from_secs(1));
    assert_eq!(client.expect_send(&mut exchange).0, 3);
    exchange.handle_outcome(Outcome::Success("third time"), client.now);
    assert_eq!(client.finish(&mut exchange).unwrap(), "third time");
    assert_eq!((exchange.attempts(), exchange.retries()), (3, 2));
}
