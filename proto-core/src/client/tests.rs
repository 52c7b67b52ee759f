use std::time::Duration;

use http::{HeaderMap, Method, StatusCode};

use super::*;
use crate::response::api_error;

fn status_error(code: u16, reason: &str) -> Error {
    let body = format!(
        r#"{{"kind":"Status","apiVersion":"v1","status":"Failure","message":"m","reason":"{reason}","code":{code}}}"#
    );
    let status = StatusCode::from_u16(code).unwrap();
    api_error(&Method::GET, status, &HeaderMap::new(), body.as_bytes())
        .expect("an error status")
        .into()
}

/// An error with a source, as a wrapping transport error.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
struct Wrapper {
    what: &'static str,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

fn transport(source: BoxError) -> Error {
    Error::Transport {
        method: Method::GET,
        uri: "/api/v1/pods".into(),
        source,
    }
}

#[test]
fn client_error_display_texts_name_the_request_and_the_limit() {
    let timeout = Error::Timeout {
        method: Method::GET,
        uri: "/api/v1/pods".into(),
        waiting_for: "response head",
        after: Duration::from_secs(30),
    };
    assert_eq!(
        timeout.to_string(),
        "GET /api/v1/pods: no response head within 30s"
    );
    let too_large = Error::BodyTooLarge {
        method: Method::PUT,
        uri: "/api/v1/namespaces/a/pods/b".into(),
        limit: 1024,
    };
    assert_eq!(
        too_large.to_string(),
        "PUT /api/v1/namespaces/a/pods/b: response body exceeds the 1024-byte limit"
    );
    let body = Error::Body {
        method: Method::GET,
        uri: "/api".into(),
        source: Box::new(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "eof",
        )),
    };
    assert_eq!(body.to_string(), "GET /api: reading the response body: eof");
    let sync = Error::SyncTimeout {
        resource: "pods".into(),
        after: Duration::from_secs(5),
    };
    assert_eq!(sync.to_string(), "the pods informer did not sync within 5s");
    let base = Error::BaseUrl {
        url: "ftp://x".into(),
        what: "not http or https",
    };
    assert_eq!(base.to_string(), "base URL \"ftp://x\": not http or https");
    let unsupported = Error::Unsupported {
        what: "auth-provider",
        detail: "gcp".into(),
    };
    assert_eq!(
        unsupported.to_string(),
        "auth-provider is not supported by windlass yet (gcp)"
    );
}

#[test]
fn client_error_transport_display_shows_each_cause_once() {
    let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
    let error = transport(Box::new(Wrapper {
        what: "client error (Connect)",
        source: Box::new(refused),
    }));
    assert_eq!(
        error.to_string(),
        "GET /api/v1/pods: client error (Connect): refused"
    );
    // A parent that already shows its cause's text does not repeat it.
    let inner = std::io::Error::other("tunnel refused");
    let error = transport(Box::new(Wrapper {
        what: "proxy p: tunnel refused",
        source: Box::new(inner),
    }));
    assert_eq!(
        error.to_string(),
        "GET /api/v1/pods: proxy p: tunnel refused"
    );
}

#[test]
fn client_error_is_timeout_walks_the_transport_source_chain() {
    let timed_out = std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out");
    let wrapped = transport(Box::new(Wrapper {
        what: "client error (Connect)",
        source: Box::new(timed_out),
    }));
    assert!(wrapped.is_timeout());
    let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
    assert!(!transport(Box::new(refused)).is_timeout());
    // A body cut short by a timed-out read is a broken body, not a timeout:
    // the clients turn their own read timeouts into `Error::Timeout`.
    let body = Error::Body {
        method: Method::GET,
        uri: "/api".into(),
        source: Box::new(std::io::Error::from(std::io::ErrorKind::TimedOut)),
    };
    assert!(!body.is_timeout());
}

#[test]
fn client_error_proxy_is_found_behind_the_transport_errors_wrapping_it() {
    let refused = ProxyError::Refused {
        status: 407,
        reason: "Proxy Authentication Required".into(),
        challenge: None,
    };
    let error = transport(Box::new(Wrapper {
        what: "proxy p",
        source: Box::new(refused.clone()),
    }));
    assert_eq!(error.proxy(), Some(&refused));
    let setting = Error::Proxy(refused.clone());
    assert_eq!(setting.proxy(), Some(&refused));
    let unrelated = transport(Box::new(std::io::Error::other("reset")));
    assert_eq!(unrelated.proxy(), None);
}

#[test]
fn client_error_classifiers_read_the_servers_status() {
    let not_found = status_error(404, "NotFound");
    assert!(not_found.is_not_found());
    assert!(!not_found.is_conflict());
    assert_eq!(not_found.api().map(|a| a.code()), Some(404));
    assert!(status_error(409, "Conflict").is_conflict());
    let exists = status_error(409, "AlreadyExists");
    assert!(exists.is_already_exists());
    assert!(!exists.is_conflict());
    assert!(status_error(410, "Expired").is_expired());
    let timeout = Error::Timeout {
        method: Method::GET,
        uri: "/".into(),
        waiting_for: "body bytes",
        after: Duration::from_secs(1),
    };
    assert!(timeout.api().is_none());
    assert!(!timeout.is_not_found());
}

#[test]
fn client_error_as_the_reflectors_transport_error() {
    let timeout = Error::Timeout {
        method: Method::GET,
        uri: "/api/v1/pods".into(),
        waiting_for: "body bytes",
        after: Duration::from_secs(1),
    };
    assert_eq!(timeout.to_transport_error(), TransportError::TimedOut);
    let refused = transport(Box::new(Wrapper {
        what: "client error (Connect)",
        source: Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
    }));
    assert_eq!(
        refused.to_transport_error(),
        TransportError::ConnectionRefused
    );
    let body = Error::Body {
        method: Method::GET,
        uri: "/api/v1/pods".into(),
        source: Box::new(std::io::Error::other("connection reset")),
    };
    assert_eq!(
        body.to_transport_error(),
        TransportError::Closed("connection reset".into())
    );
    let reset = transport(Box::new(std::io::Error::other("reset")));
    assert_eq!(
        reset.to_transport_error(),
        TransportError::Other("GET /api/v1/pods: reset".into())
    );
}

#[test]
fn client_call_is_a_stream_for_watches_and_followed_logs() {
    let call = |kind| Call {
        verb: "v",
        kind,
        resource: "pods",
    };
    assert!(call(RequestKind::Watch).is_stream());
    assert!(call(RequestKind::Stream).is_stream());
    assert!(!call(RequestKind::Get).is_stream());
    assert!(!call(RequestKind::Create).is_stream());
}

#[test]
fn client_body_limit_takes_up_to_the_limit_and_refuses_one_byte_more() {
    let limit = BodyLimit::new(8);
    assert_eq!(limit.read_bound(), 9);
    let mut body = Vec::new();
    limit.extend(&mut body, b"0123").unwrap();
    limit.extend(&mut body, b"4567").unwrap();
    assert_eq!(body, b"01234567");
    assert_eq!(limit.extend(&mut body, b"8"), Err(TooLarge { limit: 8 }));
    assert_eq!(body.len(), 8, "a refused chunk is not buffered");
    assert_eq!(limit.check(8), Ok(()));
    assert_eq!(limit.check(9), Err(TooLarge { limit: 8 }));
    let error = TooLarge { limit: 8 }.into_error(&Method::GET, "/api");
    assert!(matches!(error, Error::BodyTooLarge { limit: 8, ref uri, .. } if uri == "/api"));
}

#[test]
fn client_body_limit_of_zero_takes_only_an_empty_body() {
    let limit = BodyLimit::new(0);
    let mut body = Vec::new();
    limit.extend(&mut body, b"").unwrap();
    assert!(limit.extend(&mut body, b"x").is_err());
    assert!(body.is_empty());
}
