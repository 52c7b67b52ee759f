//! Response classification. Status bodies are written the way the API
//! server writes them (`responsewriters.ErrorNegotiated`, messages from
//! wire-formats.md §4); the recorded 422 and DELETE-Success bodies are
//! exercised in `tests/wire_fixtures.rs`.

use super::*;
use k8s_openapi::api::core::v1::Pod;
use proptest::prelude::*;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, v.parse().unwrap());
    }
    h
}

fn json_headers() -> HeaderMap {
    headers(&[("content-type", "application/json")])
}

fn classify(code: u16, h: &HeaderMap, body: &[u8]) -> ApiError {
    api_error(&Method::GET, StatusCode::from_u16(code).unwrap(), h, body).expect("an error")
}

const NOT_FOUND: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"nope\" not found","reason":"NotFound","details":{"name":"nope","kind":"pods"},"code":404}
"#;

#[test]
fn response_status_404_kept_whole() {
    let err = classify(404, &json_headers(), NOT_FOUND.as_bytes());
    assert!(err.is_not_found());
    assert!(!err.is_synthesized());
    assert!(!err.is_conflict() && !err.is_expired() && !err.is_too_many_requests());
    assert_eq!(err.code(), 404);
    assert_eq!(err.message(), "pods \"nope\" not found");
    let details = err.status().details.as_ref().unwrap();
    assert_eq!(details.name.as_deref(), Some("nope"));
    assert_eq!(details.kind.as_deref(), Some("pods"));
    assert_eq!(err.to_string(), "NotFound (404): pods \"nope\" not found");
    // Through the decoding entry point.
    let e = decode_json::<Pod>(
        &Method::GET,
        StatusCode::NOT_FOUND,
        &json_headers(),
        NOT_FOUND.as_bytes(),
    )
    .unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(e.api().unwrap().status().code, Some(404));
}

#[test]
fn response_status_409_already_exists_and_conflict() {
    let exists = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"web\" already exists","reason":"AlreadyExists","details":{"name":"web","kind":"pods"},"code":409}"#;
    let err = classify(409, &json_headers(), exists);
    assert!(err.is_already_exists());
    assert!(!err.is_conflict(), "AlreadyExists is not a Conflict");

    let conflict = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Operation cannot be fulfilled on pods \"x\": the object has been modified; please apply your changes to the latest version and try again","reason":"Conflict","details":{"name":"x","kind":"pods"},"code":409}"#;
    let err = classify(409, &json_headers(), conflict);
    assert!(err.is_conflict());
    assert!(!err.is_already_exists());

    // A bare 409 body: POST means AlreadyExists, anything else Conflict (client-go).
    let post = api_error(&Method::POST, StatusCode::CONFLICT, &HeaderMap::new(), b"").unwrap();
    assert!(post.is_already_exists() && post.is_synthesized());
    let put = api_error(&Method::PUT, StatusCode::CONFLICT, &HeaderMap::new(), b"").unwrap();
    assert!(put.is_conflict() && !put.is_already_exists());
}

#[test]
fn response_status_410_expired_gone_and_bare() {
    let expired = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"The resourceVersion for the provided list is too old.","reason":"Expired","code":410}"#;
    assert!(classify(410, &json_headers(), expired).is_expired());
    let gone = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (3473)","reason":"Gone","code":410}"#;
    let err = classify(410, &json_headers(), gone);
    assert!(err.is_expired() && err.is_gone());
    // Any 410, whatever it says.
    assert!(classify(410, &HeaderMap::new(), b"gone").is_expired());
    // A watch ERROR event's Status, handed over by the watch decoder.
    let status: Status = serde_json::from_slice(gone).unwrap();
    let err = ApiError::from_status(status, StatusCode::OK, &HeaderMap::new());
    assert!(err.is_expired());
    assert_eq!(err.code(), 410);
}

#[test]
fn response_status_422_invalid_with_causes() {
    let body = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Pod \"p\" is invalid: spec.containers: Required value","reason":"Invalid","details":{"name":"p","kind":"Pod","causes":[{"reason":"FieldValueRequired","message":"Required value","field":"spec.containers"}]},"code":422}"#;
    let err = classify(422, &json_headers(), body);
    assert!(err.is_invalid());
    assert_eq!(err.causes().len(), 1);
    assert_eq!(err.causes()[0].field.as_deref(), Some("spec.containers"));
    assert_eq!(
        err.causes()[0].reason.as_deref(),
        Some("FieldValueRequired")
    );
}

#[test]
fn response_text_plain_429_becomes_too_many_requests_status() {
    let h = headers(&[
        ("content-type", "text/plain; charset=utf-8"),
        ("retry-after", "7"),
        ("x-content-type-options", "nosniff"),
    ]);
    let err = classify(429, &h, b"Too many requests, please try again later.\n");
    assert!(err.is_synthesized());
    assert!(err.is_too_many_requests());
    assert_eq!(err.reason(), "TooManyRequests");
    assert_eq!(err.code(), 429);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(
        err.retry_after_header(),
        Some(RetryAfter::Delay(Duration::from_secs(7)))
    );
    let details = err.status().details.as_ref().unwrap();
    assert_eq!(details.retry_after_seconds, Some(7));
    assert_eq!(
        err.causes()[0].message.as_deref(),
        Some("Too many requests, please try again later.")
    );
    assert_eq!(err.status().status.as_deref(), Some("Failure"));
    // A Status-shaped 429 (eviction blocked by a PodDisruptionBudget) is kept as sent.
    let pdb = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Cannot evict pod as it would violate the pod's disruption budget.","reason":"TooManyRequests","details":{"causes":[{"reason":"DisruptionBudget","message":"The disruption budget web needs 1 healthy pods and has 1 currently"}]},"code":429}"#;
    let err = classify(429, &json_headers(), pdb);
    assert!(err.is_too_many_requests() && !err.is_synthesized());
    assert_eq!(err.retry_after(), None);
}

#[test]
fn response_retry_after_header_forms_and_details() {
    assert_eq!(
        RetryAfter::parse(" 120 "),
        Some(RetryAfter::Delay(Duration::from_secs(120)))
    );
    assert_eq!(RetryAfter::parse("-1"), None);
    assert_eq!(RetryAfter::parse("1.5"), None);
    assert_eq!(RetryAfter::parse("99999999999999999999999"), None);
    assert_eq!(RetryAfter::parse(""), None);
    let at = RetryAfter::parse("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
    assert_eq!(
        at,
        RetryAfter::At(SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777))
    );
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_770);
    assert_eq!(at.delay_from(now), Duration::from_secs(7));
    assert_eq!(at.delay_from(now + Duration::from_secs(60)), Duration::ZERO);
    assert_eq!(
        RetryAfter::parse("Thu, 01 Jan 1970 00:00:00 GMT"),
        Some(RetryAfter::At(SystemTime::UNIX_EPOCH))
    );
    assert_eq!(
        RetryAfter::parse("Wed, 29 Feb 2024 23:59:59 GMT"),
        Some(RetryAfter::At(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_251_199)
        ))
    );
    for bad in [
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:49:37 GMT",
        "Sun, 06 Nov 1994 08:49 GMT",
    ] {
        assert_eq!(RetryAfter::parse(bad), None, "{bad}");
    }

    // An HTTP-date header is kept but retry_after() falls back to the details.
    let body = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"The list operation against pods could not be completed at this time, please try again.","reason":"ServerTimeout","details":{"name":"list","kind":"pods","retryAfterSeconds":2},"code":500}"#;
    let h = headers(&[
        ("content-type", "application/json"),
        ("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT"),
    ]);
    let err = classify(500, &h, body);
    assert!(err.is_server_timeout());
    assert!(matches!(err.retry_after_header(), Some(RetryAfter::At(_))));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
    // The header in seconds wins over the details.
    let h = headers(&[("content-type", "application/json"), ("retry-after", "5")]);
    assert_eq!(
        classify(500, &h, body).retry_after(),
        Some(Duration::from_secs(5))
    );
}

#[test]
fn response_status_too_large_resource_version_in_all_three_forms() {
    // 1.18.6+: cause ResourceVersionTooLarge.
    let current = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Too large resource version: 40, current: 30","reason":"Timeout","details":{"causes":[{"reason":"ResourceVersionTooLarge","message":"Too large resource version"}],"retryAfterSeconds":1},"code":504}"#;
    let err = classify(504, &json_headers(), current);
    assert!(err.is_too_large_resource_version());
    assert!(err.is_timeout());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    // 1.17.0–1.18.5: Timeout with the message as a cause message.
    let middle = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Timeout: Too large resource version: 40, current: 30","reason":"Timeout","details":{"causes":[{"message":"Too large resource version"}],"retryAfterSeconds":1},"code":504}"#;
    assert!(classify(504, &json_headers(), middle).is_too_large_resource_version());
    // Before 1.17: Timeout whose message says so.
    let old = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Too large resource version: 40, current: 30","reason":"Timeout","code":504}"#;
    assert!(classify(504, &json_headers(), old).is_too_large_resource_version());
    // The message alone is not enough without a Timeout.
    let other = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Too large resource version","reason":"BadRequest","code":400}"#;
    assert!(!classify(400, &json_headers(), other).is_too_large_resource_version());
}

#[test]
fn response_non_status_bodies_are_cut_at_a_char_boundary() {
    // 2047 ASCII bytes then a 3-byte character straddling the 2 KiB limit.
    let mut body = vec![b'a'; 2047];
    body.extend_from_slice("€".as_bytes());
    body.extend_from_slice(&[b'z'; 5000]);
    let h = headers(&[("content-type", "text/html")]);
    let err = classify(502, &h, &body);
    assert!(err.is_synthesized());
    assert_eq!(err.reason(), "InternalError");
    let cause = err.causes()[0].message.as_deref().unwrap();
    assert_eq!(cause.len(), 2047);
    assert!(cause.bytes().all(|b| b == b'a'));
    assert!(err.message().starts_with("an error on the server (\"aaa"));
    // Binary garbage: replaced, never a panic; JSON that is not a Status is not one.
    let err = classify(500, &json_headers(), &[0xff, 0xfe, 0x00, 0x80]);
    assert!(err.is_internal_error() && err.is_synthesized());
    let err = classify(
        404,
        &json_headers(),
        br#"{"kind":"Pod","status":"Failure"}"#,
    );
    assert!(err.is_synthesized() && err.is_not_found());
    assert_eq!(
        err.message(),
        "the server could not find the requested resource"
    );
    assert!(
        err.causes()[0]
            .message
            .as_deref()
            .unwrap()
            .starts_with("application/json body: ")
    );
    // Empty body, unknown code.
    let err = classify(418, &HeaderMap::new(), b"");
    assert_eq!(err.reason(), "");
    assert_eq!(err.causes()[0].message.as_deref(), Some("unknown"));
    assert_eq!(
        err.to_string(),
        "Unknown (418): the server responded with the status code 418 but did not return more information"
    );
}

#[test]
fn response_success_codes_are_not_errors() {
    for code in [200, 201, 202, 204, 206, 101] {
        let status = StatusCode::from_u16(code).unwrap();
        assert!(
            api_error(
                &Method::GET,
                status,
                &HeaderMap::new(),
                NOT_FOUND.as_bytes()
            )
            .is_none()
        );
    }
    assert!(
        api_error(
            &Method::GET,
            StatusCode::from_u16(207).unwrap(),
            &HeaderMap::new(),
            b""
        )
        .is_some()
    );
    assert!(
        api_error(
            &Method::GET,
            StatusCode::MOVED_PERMANENTLY,
            &HeaderMap::new(),
            b""
        )
        .is_some()
    );
}

#[test]
fn response_decode_json_success_and_failures() {
    let pod = br#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","namespace":"ns"}}"#;
    let decoded: Pod = decode_json(&Method::GET, StatusCode::OK, &json_headers(), pod).unwrap();
    assert_eq!(decoded.metadata.name.as_deref(), Some("p"));
    // A Failure Status in a 200 is an error.
    let failure = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"boom","reason":"InternalError","code":500}"#;
    let err =
        decode_json::<Pod>(&Method::GET, StatusCode::OK, &json_headers(), failure).unwrap_err();
    assert!(err.api().unwrap().is_internal_error());
    // A body that is not a Pod.
    let err = decode_json::<Pod>(
        &Method::GET,
        StatusCode::OK,
        &json_headers(),
        b"{\"metadata\":1}",
    )
    .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err}");
    // Protobuf and text bodies are not this function's.
    let pb = headers(&[("content-type", "application/vnd.kubernetes.protobuf")]);
    assert!(matches!(
        decode_json::<Pod>(&Method::GET, StatusCode::OK, &pb, b"k8s\0"),
        Err(Error::NotJson {
            format: Format::Protobuf,
            ..
        })
    ));
    let text = headers(&[("content-type", "text/plain")]);
    assert!(matches!(
        decode_json::<Pod>(&Method::GET, StatusCode::OK, &text, b"hi"),
        Err(Error::ContentType { .. })
    ));
}

#[test]
fn response_delete_returns_object_or_success_status() {
    let success = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","details":{"name":"fb1","group":"example.com","kind":"foobars","uid":"u"}}"#;
    match decode_json_delete::<Pod>(StatusCode::OK, &json_headers(), success).unwrap() {
        Deleted::Status(s) => assert_eq!(s.details.unwrap().name.as_deref(), Some("fb1")),
        Deleted::Object(_) => panic!("a Success Status is not a Pod"),
    }
    let pod = br#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","deletionTimestamp":"2024-01-01T00:00:00Z"}}"#;
    assert!(matches!(
        decode_json_delete::<Pod>(StatusCode::OK, &json_headers(), pod).unwrap(),
        Deleted::Object(p) if p.metadata.deletion_timestamp.is_some()
    ));
    let err =
        decode_json_delete::<Pod>(StatusCode::NOT_FOUND, &json_headers(), NOT_FOUND.as_bytes())
            .unwrap_err();
    assert!(err.is_not_found());
}

#[test]
fn response_retry_wait_is_429_or_5xx_with_a_retry_after() {
    let with_header = headers(&[("retry-after", "3")]);
    let three = Some(Duration::from_secs(3));
    assert_eq!(classify(429, &with_header, b"").retry_wait(), three);
    assert_eq!(classify(503, &with_header, b"").retry_wait(), three);
    assert_eq!(classify(500, &with_header, b"").retry_wait(), three);
    // Not for a 4xx other than 429, nor without a hint, nor for a date.
    assert_eq!(classify(409, &with_header, b"").retry_wait(), None);
    assert_eq!(classify(503, &HeaderMap::new(), b"").retry_wait(), None);
    let date = headers(&[("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")]);
    assert_eq!(classify(503, &date, b"").retry_wait(), None);
    // retryAfterSeconds in the body counts as well (client-go reads only the
    // header, which the API server always sets beside it): the same rule as
    // the retry policy's.
    let body = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","reason":"ServerTimeout","details":{"retryAfterSeconds":2},"code":500}"#;
    let err = classify(500, &json_headers(), body);
    assert_eq!(err.retry_wait(), Some(Duration::from_secs(2)));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
    let conflict = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","reason":"Conflict","details":{"retryAfterSeconds":2},"code":409}"#;
    let err = classify(409, &json_headers(), conflict);
    assert_eq!(err.retry_wait(), None);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
}

#[test]
fn response_retry_after_one_rule_for_wait_and_retry_policy() {
    use crate::retry::Failure;
    let cases: &[(u16, Option<&str>, &[u8])] = &[
        (429, Some("3"), b""),
        (503, None, br#"{"kind":"Status","status":"Failure","details":{"retryAfterSeconds":4},"code":503}"#),
        (500, Some("1"), br#"{"kind":"Status","status":"Failure","details":{"retryAfterSeconds":9},"code":500}"#),
        (500, Some("Sun, 06 Nov 1994 08:49:37 GMT"), br#"{"kind":"Status","status":"Failure","details":{"retryAfterSeconds":9},"code":500}"#),
        (503, Some("0"), b""),
        (503, Some("-1"), br#"{"kind":"Status","status":"Failure","details":{"retryAfterSeconds":-5},"code":503}"#),
        (429, Some("86400000"), b""),
        (504, None, br#"{"kind":"Status","status":"Failure","details":{"retryAfterSeconds":2147483647},"code":504}"#),
        (404, Some("3"), b""),
    ];
    for &(code, header, body) in cases {
        let mut h = json_headers();
        if let Some(v) = header {
            h.insert(RETRY_AFTER, v.parse().unwrap());
        }
        let err = classify(code, &h, body);
        let Failure::Status { retry_after, .. } = Failure::from(&err) else {
            panic!("an API error is a status failure");
        };
        assert_eq!(retry_after, err.retry_after(), "{code} {header:?}");
        let retried = code == 429 || code >= 500;
        assert_eq!(
            err.retry_wait(),
            err.retry_after().filter(|_| retried),
            "{code} {header:?}"
        );
        assert!(err.retry_after().is_none_or(|d| d <= MAX_RETRY_AFTER));
    }
}

#[test]
fn response_retry_after_from_a_hostile_server_is_capped() {
    // A header asking for 1000 days, and a body asking for 68 years.
    let h = headers(&[("retry-after", "86400000")]);
    let err = classify(429, &h, b"Too many requests, please try again later.\n");
    assert_eq!(err.retry_after(), Some(MAX_RETRY_AFTER));
    assert_eq!(err.retry_wait(), Some(MAX_RETRY_AFTER));
    // The header as sent stays readable.
    assert_eq!(
        err.retry_after_header(),
        Some(RetryAfter::Delay(Duration::from_secs(86_400_000)))
    );
    let body = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","reason":"ServiceUnavailable","details":{"retryAfterSeconds":2147483647},"code":503}"#;
    let err = classify(503, &json_headers(), body);
    assert_eq!(err.retry_wait(), Some(MAX_RETRY_AFTER));
    // An HTTP date far in the future, once a clock reads it.
    let far = RetryAfter::parse("Fri, 31 Dec 2100 23:59:59 GMT").unwrap();
    assert_eq!(far.delay_from(SystemTime::UNIX_EPOCH), MAX_RETRY_AFTER);
    // Below the cap, the hint is honoured exactly.
    let h = headers(&[("retry-after", "59")]);
    assert_eq!(
        classify(503, &h, b"").retry_wait(),
        Some(Duration::from_secs(59))
    );
}

proptest! {
    #[test]
    fn response_classification_never_panics_on_garbage(
        code in 100u16..600,
        body in proptest::collection::vec(any::<u8>(), 0..4096),
        ct in proptest::option::of("[ -~]{0,40}"),
        retry in proptest::option::of("[ -~]{0,40}"),
    ) {
        let mut h = HeaderMap::new();
        if let Some(ct) = ct.and_then(|c| http::HeaderValue::from_str(&c).ok()) {
            h.insert(CONTENT_TYPE, ct);
        }
        if let Some(r) = retry.and_then(|r| http::HeaderValue::from_str(&r).ok()) {
            h.insert(RETRY_AFTER, r);
        }
        let status = StatusCode::from_u16(code).unwrap();
        if let Some(err) = api_error(&Method::GET, status, &h, &body) {
            let _ = err.to_string();
            let _ = err.retry_after();
            prop_assert!(err.causes().iter().all(|c| c.message.as_ref().is_none_or(|m| m.len() <= MAX_UNSTRUCTURED_BODY + 64)));
        }
        let _ = decode_json::<Pod>(&Method::GET, status, &h, &body);
        let _ = decode_json_delete::<Pod>(status, &h, &body);
    }
}
