//! The client core and the runtime seam on their own: a fake [`Runtime`]
//! (threads and `std::thread::sleep`) and a scripted [`Transport`] that never
//! opens a socket. What is pinned here: how a transport's failures become
//! errors and retries, that the read timeout bounds the response head, that
//! every attempt goes through the hooks with the base URL and the client's
//! headers, and that a spawned task can be aborted.

use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use windlass_async::runtime::{failure_of, spawn_with_handle, timeout};
use windlass_async::{
    BoxFuture, Call, Client, ClientParts, Error, Hook, Purpose, Runtime, Transport, TransportError,
};
use windlass_proto::codec::Format;
use windlass_proto::config::{AuthConfig, Credentials, ExecOutcome, ExecRequest, Impersonation};
use windlass_proto::endpoint::Endpoint;
use windlass_proto::flowcontrol::FlowControl;
use windlass_proto::retry::{Failure, RequestKind};

/// Runs a future on this thread, parking between wake-ups.
fn block_on<T>(future: impl Future<Output = T>) -> T {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

/// Each task on a thread of its own; each sleep a thread that wakes it.
struct Threads;

impl Runtime for Threads {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        std::thread::spawn(move || block_on(task));
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        let (tx, rx) = async_channel::bounded(1);
        std::thread::spawn(move || {
            std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
            let _ = tx.send_blocking(());
        });
        Box::pin(async move {
            let _ = rx.recv().await;
        })
    }

    fn read_file(&self, path: PathBuf) -> BoxFuture<'static, std::io::Result<Vec<u8>>> {
        Box::pin(async move { std::fs::read(path) })
    }

    fn run_exec(&self, _: ExecRequest) -> BoxFuture<'static, ExecOutcome> {
        unreachable!("no test configures an exec plugin")
    }
}

/// What the scripted transport answers to an attempt.
enum Answer {
    Refused,
    Reset,
    ConnectTimeout(Duration),
    Never,
}

/// Answers attempts from a script and remembers what it was sent.
#[derive(Clone, Default)]
struct Scripted {
    answers: Arc<Mutex<VecDeque<Answer>>>,
    sent: Arc<Mutex<Vec<(Uri, HeaderMap, Purpose)>>>,
}

impl Transport for Scripted {
    fn send(
        &self,
        request: Request<Full<Bytes>>,
        purpose: Purpose,
    ) -> BoxFuture<'_, Result<Response<Incoming>, TransportError>> {
        let seen = (request.uri().clone(), request.headers().clone(), purpose);
        self.sent.lock().unwrap().push(seen);
        let answer = self.answers.lock().unwrap().pop_front();
        Box::pin(async move {
            let io = |kind| TransportError::failed(std::io::Error::from(kind));
            match answer.expect("an answer for every attempt") {
                Answer::Refused => Err(TransportError::Failed {
                    failure: Failure::Connect,
                    source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into(),
                }),
                Answer::Reset => Err(io(std::io::ErrorKind::ConnectionReset)),
                Answer::ConnectTimeout(after) => Err(TransportError::ConnectTimeout(after)),
                Answer::Never => std::future::pending().await,
            }
        })
    }
}

/// Counts the attempts hooks see, and adds a header to each.
#[derive(Default)]
struct Counting {
    failed: Mutex<u32>,
}

impl Hook for Counting {
    fn on_request(&self, request: &mut Request<Full<Bytes>>) {
        let value = HeaderValue::from_static("yes");
        request.headers_mut().insert("x-hooked", value);
    }

    fn on_response(&self, _: &Method, _: &Uri, status: Option<StatusCode>, _: Duration) {
        if status.is_none() {
            *self.failed.lock().unwrap() += 1;
        }
    }
}

fn client(transport: Scripted, hook: Arc<Counting>, read_timeout: Duration) -> Client {
    let mut headers = HeaderMap::new();
    headers.insert("user-agent", HeaderValue::from_static("windlass-test"));
    Client::new(ClientParts {
        runtime: Arc::new(Threads),
        transport: Box::new(transport),
        base: Endpoint::parse("http://server.test:8080/prefix").unwrap(),
        default_namespace: "default".into(),
        credentials: Credentials::new(
            &AuthConfig::None,
            &Impersonation::default(),
            false,
            Instant::now(),
        ),
        flow_control: FlowControl::default(),
        headers,
        hooks: vec![hook],
        read_timeout,
        max_body: 1 << 20,
        max_retries: 2,
        format: Format::Json,
    })
}

fn script(answers: impl IntoIterator<Item = Answer>) -> Scripted {
    let scripted = Scripted::default();
    scripted.answers.lock().unwrap().extend(answers);
    scripted
}

fn get(path: &str) -> Request<Bytes> {
    Request::get(path).body(Bytes::new()).unwrap()
}

const GET: Call<'static> = Call {
    verb: "get",
    kind: RequestKind::Get,
    resource: "pods",
};

#[test]
fn client_sends_under_the_base_path_with_headers_and_hooks() {
    let transport = script([Answer::Refused]);
    let hook = Arc::new(Counting::default());
    let client = client(transport.clone(), hook.clone(), Duration::from_secs(5));
    let error = block_on(client.send(get("/api/v1/pods?limit=2"), GET)).unwrap_err();
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    let sent = transport.sent.lock().unwrap();
    let (uri, headers, purpose) = &sent[0];
    assert_eq!(uri, "http://server.test:8080/prefix/api/v1/pods?limit=2");
    assert_eq!(headers["user-agent"], "windlass-test");
    assert_eq!(headers["x-hooked"], "yes");
    assert_eq!(*purpose, Purpose::Request);
}

#[test]
fn client_refused_connection_is_not_retried() {
    let transport = script([Answer::Refused, Answer::Refused]);
    let hook = Arc::new(Counting::default());
    let client = client(transport.clone(), hook.clone(), Duration::from_secs(5));
    let error = block_on(client.send(get("/api/v1/pods"), GET)).unwrap_err();
    assert!(error.to_string().contains("GET /api/v1/pods"), "{error}");
    assert_eq!(transport.sent.lock().unwrap().len(), 1);
    assert_eq!(*hook.failed.lock().unwrap(), 1);
}

#[test]
fn client_reset_get_is_retried_as_the_policy_says() {
    // Two resets, then a refusal: two retries a second apart, then the refusal is final.
    let transport = script([Answer::Reset, Answer::Reset, Answer::Refused]);
    let hook = Arc::new(Counting::default());
    let client = client(transport.clone(), hook.clone(), Duration::from_secs(5));
    let started = Instant::now();
    let error = block_on(client.send(get("/api/v1/pods"), GET)).unwrap_err();
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    assert_eq!(transport.sent.lock().unwrap().len(), 3);
    assert_eq!(*hook.failed.lock().unwrap(), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn client_read_timeout_bounds_the_response_head() {
    let transport = script([Answer::Never]);
    let client = client(transport, Arc::default(), Duration::from_millis(100));
    let create = Call {
        verb: "create",
        kind: RequestKind::Create,
        resource: "pods",
    };
    let request = Request::post("/api/v1/namespaces/a/pods")
        .body(Bytes::from_static(b"{}"))
        .unwrap();
    let error = block_on(client.send(request, create)).unwrap_err();
    match error {
        Error::Timeout {
            waiting_for, after, ..
        } => {
            assert_eq!(waiting_for, "response head");
            assert_eq!(after, Duration::from_millis(100));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn client_connect_timeout_is_a_timeout_of_the_connection() {
    let transport = script([Answer::ConnectTimeout(Duration::from_secs(7))]);
    let client = client(transport.clone(), Arc::default(), Duration::from_secs(5));
    let watch = Call {
        verb: "watch",
        kind: RequestKind::Watch,
        resource: "pods",
    };
    let error = block_on(client.send(get("/api/v1/pods?watch=true"), watch)).unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert!(
        error.to_string().ends_with("no connection within 7s"),
        "{error}"
    );
    assert_eq!(transport.sent.lock().unwrap()[0].2, Purpose::Stream);
}

#[test]
fn runtime_timeout_and_abort_end_what_never_finishes() {
    let runtime = Threads;
    let output = block_on(timeout(
        &runtime,
        Duration::from_millis(20),
        std::future::pending::<()>(),
    ));
    assert_eq!(output, None);
    assert_eq!(
        block_on(timeout(&runtime, Duration::MAX, async { 7 })),
        Some(7)
    );
    let task = spawn_with_handle(&runtime, std::future::pending::<()>());
    assert!(!task.is_finished());
    task.abort();
    assert!(task.is_finished());
    assert!(block_on(task).is_err());
    let done = spawn_with_handle(&runtime, async { 42 });
    assert_eq!(block_on(done), Ok(42));
}

#[test]
fn runtime_failure_of_reads_the_error_chain() {
    let io = |kind| std::io::Error::from(kind);
    use std::io::ErrorKind::*;
    assert_eq!(failure_of(&io(UnexpectedEof)), Failure::EarlyEof);
    assert_eq!(failure_of(&io(TimedOut)), Failure::Timeout);
    assert_eq!(failure_of(&io(ConnectionReset)), Failure::ConnectionReset);
    let wrapped = std::io::Error::other(io(UnexpectedEof));
    // An IO error decides by its own kind, the first in the chain.
    assert_eq!(failure_of(&wrapped), Failure::ConnectionReset);
    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);
    assert_eq!(failure_of(&Outer(io(TimedOut))), Failure::Timeout);
}
