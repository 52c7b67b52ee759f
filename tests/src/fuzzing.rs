//! The bodies of the `fuzz/` targets, and their seed corpora built from the
//! fixtures. The cargo-fuzz targets call these functions; so does an
//! ordinary test (`tests/fuzz_seeds.rs`), which replays every seed, so CI
//! keeps the targets honest without running a fuzzer.
//!
//! Each watch target checks more than "no panic": it decodes the same body
//! in one piece and in chunks whose sizes the input's first byte chooses,
//! and asserts that both yield the same events (and the same kind of error
//! at the same point), and once more with a tiny event queue polled only
//! now and then (the decoder's backpressure path). `cbor_decode` checks
//! that whatever decodes as a `serde_json::Value` re-encodes and decodes to
//! the same value; `protobuf_envelope` the same for typed objects in
//! protobuf; `response_classify` that every response becomes a bounded,
//! consistent error or success.

use std::path::Path;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue, Method, StatusCode};
use k8s_openapi::api::core::v1::Pod;
use windlass_proto::codec::{cbor, protobuf};
use windlass_proto::response::{self, MAX_RETRY_AFTER, MAX_UNSTRUCTURED_BODY, RetryAfter};
use windlass_proto::retry::Failure;
use windlass_proto::watch::{DecodeError, Framing, Limits, WatchDecoder, WatchEvent};

/// The frame limit the fuzz targets use: small, so inputs can cross it.
pub const FUZZ_MAX_FRAME: usize = 64 << 10;

/// The fuzz targets, by name.
pub const TARGETS: &[&str] = &[
    "watch_json",
    "watch_protobuf",
    "watch_cbor",
    "cbor_decode",
    "protobuf_envelope",
    "response_classify",
];

/// Runs one target's body on `data`.
///
/// # Panics
///
/// When the property the target checks does not hold, or for an unknown target name.
pub fn run(target: &str, data: &[u8]) {
    match target {
        "watch_json" => watch_json(data),
        "watch_protobuf" => watch_protobuf(data),
        "watch_cbor" => watch_cbor(data),
        "cbor_decode" => cbor_decode(data),
        "protobuf_envelope" => protobuf_envelope(data),
        "response_classify" => response_classify(data),
        other => panic!("no fuzz target {other:?}"),
    }
}

/// `watch_json`: a JSON watch stream decodes the same in any chunking.
pub fn watch_json(data: &[u8]) {
    split_invariance(Framing::JsonStream, data);
}

/// `watch_protobuf`: a protobuf watch stream decodes the same in any chunking.
pub fn watch_protobuf(data: &[u8]) {
    split_invariance(Framing::LengthPrefixed, data);
}

/// `watch_cbor`: a CBOR sequence decodes the same in any chunking.
pub fn watch_cbor(data: &[u8]) {
    split_invariance(Framing::CborSequence, data);
}

/// `cbor_decode`: arbitrary bytes never panic the CBOR decoder (as a Pod and
/// as a `serde_json::Value`), and a value that decodes round-trips through
/// the encoder.
///
/// # Panics
///
/// When a decoded value does not survive encode → decode.
pub fn cbor_decode(data: &[u8]) {
    let _ = cbor::decode::<Pod>(data);
    if let Ok(value) = cbor::decode::<serde_json::Value>(data) {
        let bytes = cbor::encode(&value).expect("a decoded value encodes");
        let back: serde_json::Value = cbor::decode(&bytes).expect("an encoded value decodes");
        assert_eq!(back, value, "CBOR round trip changed the value");
    }
}

/// What a decoder produced, comparable across chunkings: events in full,
/// errors by kind only (a too-large frame is noticed after as many bytes as
/// the chunking happened to deliver).
pub fn decode_all(framing: Framing, body: &[u8], chunk_sizes: &[usize]) -> Vec<String> {
    let mut decoder = WatchDecoder::<Pod>::new(
        framing,
        Limits {
            max_frame: FUZZ_MAX_FRAME,
        },
    );
    let mut out = Vec::new();
    let mut rest = body;
    let mut sizes = chunk_sizes.iter().cycle();
    while !rest.is_empty() {
        let size = (*sizes.next().unwrap_or(&usize::MAX)).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        if decoder.push(chunk).is_err() {
            break;
        }
        drain(&mut decoder, &mut out);
    }
    if let Err(e) = decoder.finish() {
        out.push(error_kind(&e));
    }
    drain(&mut decoder, &mut out);
    out
}

fn drain(decoder: &mut WatchDecoder<Pod>, out: &mut Vec<String>) {
    while let Some(event) = decoder.poll_event() {
        out.push(match event {
            Ok(event) => summary(&event),
            Err(e) => error_kind(&e),
        });
    }
}

fn summary(event: &WatchEvent<Pod>) -> String {
    format!("{event:?}")
}

/// An error's variant name.
pub fn error_kind(error: &DecodeError) -> String {
    let debug = format!("{error:?}");
    let end = debug
        .find(|c: char| !c.is_alphanumeric())
        .unwrap_or(debug.len());
    format!("error {}", &debug[..end])
}

/// Like [`decode_all`], but with an event queue of `max_queued` and events
/// polled only after every `poll_every`-th push: the decoder's
/// backpressure path. A push refused with [`DecodeError::Backlog`] is
/// retried after polling, as a driver would.
///
/// # Panics
///
/// When the decoder refuses a push right after being drained.
pub fn decode_lagging(
    framing: Framing,
    body: &[u8],
    chunk_sizes: &[usize],
    max_queued: usize,
    poll_every: usize,
) -> Vec<String> {
    let mut decoder = WatchDecoder::<Pod>::new(
        framing,
        Limits {
            max_frame: FUZZ_MAX_FRAME,
        },
    )
    .with_max_queued_events(max_queued);
    let mut out = Vec::new();
    let mut rest = body;
    let mut sizes = chunk_sizes.iter().cycle();
    let mut pushes = 0usize;
    while !rest.is_empty() {
        let size = (*sizes.next().unwrap_or(&usize::MAX)).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        match decoder.push(chunk) {
            Ok(()) => {}
            Err(DecodeError::Backlog { .. }) => {
                drain(&mut decoder, &mut out);
                decoder
                    .push(chunk)
                    .expect("a drained decoder takes the chunk it refused");
            }
            Err(_) => break,
        }
        pushes += 1;
        if pushes.is_multiple_of(poll_every.max(1)) {
            drain(&mut decoder, &mut out);
        }
    }
    drain(&mut decoder, &mut out);
    if let Err(e) = decoder.finish() {
        out.push(error_kind(&e));
    }
    drain(&mut decoder, &mut out);
    out
}

fn split_invariance(framing: Framing, data: &[u8]) {
    let Some((&seed, body)) = data.split_first() else {
        return;
    };
    let whole = decode_all(framing, body, &[usize::MAX]);
    let sizes: Vec<usize> = (0..8)
        .map(|i| 1 + (usize::from(seed.rotate_left(i)) * 31 + i as usize) % 97)
        .collect();
    let chunked = decode_all(framing, body, &sizes);
    assert_eq!(whole, chunked, "chunk sizes {sizes:?} changed the events");
    let max_queued = 1 + usize::from(seed % 4);
    let poll_every = 1 + usize::from(seed >> 4);
    let lagging = decode_lagging(framing, body, &sizes, max_queued, poll_every);
    assert_eq!(
        whole, lagging,
        "a queue of {max_queued} polled every {poll_every} pushes changed the events"
    );
}

/// `protobuf_envelope`: arbitrary bytes never panic the `k8s\0` +
/// `runtime.Unknown` envelope reader nor the schema-driven decoder (into a
/// `serde_json::Value`, and into the typed object for a set of kinds that
/// cover strings, bytes, quantities, int-or-string, times, maps and raw
/// JSON); a typed object that decodes round-trips through the encoder.
///
/// # Panics
///
/// When an envelope that opened is refused as having no magic, or a decoded
/// object does not survive encode → decode.
pub fn protobuf_envelope(data: &[u8]) {
    let envelope = protobuf::envelope(data);
    let dynamic = protobuf::decode::<serde_json::Value>(data);
    let Ok(envelope) = envelope else {
        assert!(dynamic.is_err(), "a body whose envelope fails decoded");
        return;
    };
    if let Some(name) = protobuf::message_name(envelope.api_version, envelope.kind) {
        let _ = protobuf::decode_message::<serde_json::Value>(name, envelope.raw);
    }
    use k8s_openapi::api::{apps, core, networking};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
    match (envelope.api_version, envelope.kind) {
        ("v1", "Pod") => protobuf_round_trip::<Pod>(data),
        ("v1", "Secret") => protobuf_round_trip::<core::v1::Secret>(data),
        ("v1", "Service") => protobuf_round_trip::<core::v1::Service>(data),
        ("v1", "Node") => protobuf_round_trip::<core::v1::Node>(data),
        ("v1", "ConfigMap") => protobuf_round_trip::<core::v1::ConfigMap>(data),
        ("v1", "Event") => protobuf_round_trip::<core::v1::Event>(data),
        ("v1", "Status") => {
            // Status has no `Resource` impl to encode with; decoding is the check.
            let _ = protobuf::decode::<Status>(data);
        }
        ("apps/v1", "Deployment") => protobuf_round_trip::<apps::v1::Deployment>(data),
        ("networking.k8s.io/v1", "Ingress") => protobuf_round_trip::<networking::v1::Ingress>(data),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
            protobuf_round_trip::<apiextensions::CustomResourceDefinition>(data)
        }
        _ => {}
    }
}

fn protobuf_round_trip<K>(data: &[u8])
where
    K: k8s_openapi::Resource
        + serde::Serialize
        + serde::de::DeserializeOwned
        + PartialEq
        + std::fmt::Debug
        + 'static,
{
    let Ok(object) = protobuf::decode::<K>(data) else {
        return;
    };
    let bytes = protobuf::encode(&object).expect("a decoded object encodes");
    // The generated encoder writes what the serde path writes (which may
    // refuse what it cannot format as text, such as a year before 1).
    if let Ok(by_serde) = protobuf::encode_as(K::API_VERSION, K::KIND, &object) {
        assert!(
            by_serde == bytes,
            "the direct and serde encoders differ on a {}",
            K::KIND
        );
    }
    let back: K = protobuf::decode(&bytes).expect("an encoded object decodes");
    assert_eq!(back, object, "protobuf round trip changed the {}", K::KIND);
}

/// The methods, `Content-Type`s and `Retry-After` values a
/// `response_classify` input chooses from by index.
const METHODS: [Method; 4] = [Method::GET, Method::POST, Method::DELETE, Method::PATCH];
const CONTENT_TYPES: [&str; 8] = [
    "",
    "application/json",
    "text/plain; charset=utf-8",
    "application/vnd.kubernetes.protobuf",
    "application/cbor",
    "text/html",
    "application/json;as=Table;v=v1;g=meta.k8s.io",
    "garbage/\u{1}",
];

/// A `response_classify` input: status code (2 bytes, big-endian), method
/// and content type (1 byte: `method << 4 | content type`), `Retry-After`
/// (1 length byte, then that many bytes; none when the length is 0), body.
pub fn response_input(
    code: u16,
    method: u8,
    content_type: u8,
    retry_after: &str,
    body: &[u8],
) -> Vec<u8> {
    let retry_after = &retry_after.as_bytes()[..retry_after.len().min(255)];
    let mut out = code.to_be_bytes().to_vec();
    out.push((method << 4) | content_type);
    out.push(retry_after.len() as u8);
    out.extend_from_slice(retry_after);
    out.extend_from_slice(body);
    out
}

/// `response_classify`: any status, headers and body classify without a
/// panic into an error that keeps the server's `Status` or a bounded
/// synthesized one; the wait it asks for is the same for every reader and
/// never more than [`MAX_RETRY_AFTER`].
///
/// # Panics
///
/// When a classification breaks one of those rules.
pub fn response_classify(data: &[u8]) {
    let [c0, c1, choice, retry_len, rest @ ..] = data else {
        return;
    };
    let code = 100 + u16::from_be_bytes([*c0, *c1]) % 500;
    let status = StatusCode::from_u16(code).expect("100..600 is a status code");
    let method = &METHODS[usize::from(choice >> 4) % METHODS.len()];
    let content_type = CONTENT_TYPES[usize::from(choice & 0x0f) % CONTENT_TYPES.len()];
    let retry_len = usize::from(*retry_len).min(rest.len());
    let (retry_bytes, body) = rest.split_at(retry_len);

    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(content_type)
        && !content_type.is_empty()
    {
        headers.insert(http::header::CONTENT_TYPE, v);
    }
    if !retry_bytes.is_empty()
        && let Ok(v) = HeaderValue::from_bytes(retry_bytes)
    {
        if let Ok(text) = v.to_str()
            && let Some(parsed) = RetryAfter::parse(text)
        {
            assert!(parsed.delay_from(SystemTime::UNIX_EPOCH) <= MAX_RETRY_AFTER);
        }
        let _ = windlass_proto::retry::parse_retry_after(&v);
        headers.insert(http::header::RETRY_AFTER, v);
    }

    let _ = response::protobuf_status::decode(body);
    let error = response::api_error(method, status, &headers, body);
    let success = (200..=206).contains(&code) || code == 101;
    assert_eq!(error.is_none(), success, "{code} classified wrongly");
    if let Some(error) = &error {
        check_api_error(error, body);
    }
    for result in [
        response::decode_json::<Pod>(method, status, &headers, body).err(),
        response::decode_json::<serde_json::Value>(method, status, &headers, body).err(),
        response::decode_json_delete::<Pod>(status, &headers, body).err(),
    ] {
        let Some(e) = result else { continue };
        let _ = e.to_string();
        if let Some(api) = e.api() {
            check_api_error(api, body);
        }
    }
}

fn check_api_error(error: &response::ApiError, body: &[u8]) {
    let _ = error.to_string();
    assert_ne!(error.code(), 0);
    let wait = error.retry_after();
    assert!(
        wait.is_none_or(|d| d <= MAX_RETRY_AFTER),
        "wait {wait:?} over the cap"
    );
    let Failure::Status { retry_after, code } = Failure::from(error) else {
        panic!("an API error is a status failure");
    };
    assert_eq!(code, error.http_status().as_u16());
    assert_eq!(
        retry_after, wait,
        "the retry policy and the error disagree on the wait"
    );
    let retried = code == 429 || code >= 500;
    assert_eq!(error.retry_wait(), wait.filter(|_| retried));
    if error.is_synthesized() {
        for cause in error.causes() {
            let len = cause.message.as_ref().map_or(0, String::len);
            // The excerpt, and at most a content-type label before it.
            assert!(
                len <= MAX_UNSTRUCTURED_BODY + 64,
                "cause of {len} bytes from a {}-byte body",
                body.len()
            );
        }
        // A 5xx quotes the excerpt escaped, as Go's `%q` does: at most six
        // bytes (`\u{1f}`) for each byte of it.
        assert!(error.message().len() <= 6 * MAX_UNSTRUCTURED_BODY + 128);
    }
    let _ = (
        error.is_not_found(),
        error.is_conflict(),
        error.is_expired(),
        error.is_too_many_requests(),
        error.is_too_large_resource_version(),
        error.is_invalid(),
    );
    let _: Option<Duration> = error.retry_wait();
}

/// The seed corpus of a target, built from the fixtures folder (each seed
/// starts with the byte that picks chunk sizes, for the watch targets).
pub fn seeds(target: &str, fixtures: &Path) -> Vec<Vec<u8>> {
    let read = |relative: &str| {
        std::fs::read(fixtures.join(relative)).unwrap_or_else(|e| panic!("fixture {relative}: {e}"))
    };
    let with_split = |bodies: Vec<Vec<u8>>| -> Vec<Vec<u8>> {
        bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| {
                let mut seed = vec![(i * 37 + 5) as u8];
                seed.extend(body);
                seed
            })
            .collect()
    };
    match target {
        "watch_json" => with_split(json_watch_bodies(fixtures)),
        "watch_protobuf" => {
            with_split(vec![read("synthetic/protobuf-watch-pods.stream-watch.bin")])
        }
        "watch_cbor" => with_split(vec![read(
            "synthetic/cbor-seq-watchlist-pods.from-v1.36-recording.cborseq",
        )]),
        "cbor_decode" => vec![
            read("synthetic/cbor-core.v1.Pod.from-HEAD-json.cbor"),
            cbor::encode(&serde_json::json!({"a": [1, -1, 1.5, "x", null, true]}))
                .expect("encodes"),
        ],
        "protobuf_envelope" => protobuf_seeds(fixtures),
        "response_classify" => response_seeds(fixtures),
        other => panic!("no fuzz target {other:?}"),
    }
}

/// Every `.pb` of `k8s-api-HEAD` (one object of each kind) and the
/// synthetic protobuf `Status`.
fn protobuf_seeds(fixtures: &Path) -> Vec<Vec<u8>> {
    let dir = fixtures.join("k8s-api-HEAD");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pb"))
        .collect();
    files.sort();
    let mut seeds: Vec<Vec<u8>> = files
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect();
    seeds.push(
        std::fs::read(fixtures.join("synthetic/protobuf-status-410-expired.pb"))
            .expect("protobuf Status fixture"),
    );
    seeds
}

/// Every recorded error response of the k8s-openapi replays (JSON `Status`
/// bodies), the protobuf `Status`, and hand-made shapes: priority-and-fairness's
/// `text/plain` 429, `Retry-After` in seconds, as a date, huge and garbage,
/// an HTML proxy page, a body far over the excerpt limit, invalid UTF-8.
fn response_seeds(fixtures: &Path) -> Vec<Vec<u8>> {
    const JSON: u8 = 1;
    const TEXT: u8 = 2;
    const PROTOBUF: u8 = 3;
    const HTML: u8 = 5;
    let mut seeds = Vec::new();
    let mut recorded: Vec<_> = replay_exchanges(fixtures)
        .into_iter()
        .filter(|e| e.status >= 300)
        .collect();
    recorded.dedup_by(|a, b| a.status == b.status && a.body == b.body);
    for exchange in recorded {
        seeds.push(response_input(
            exchange.status - 100,
            0,
            JSON,
            "",
            exchange.body.as_bytes(),
        ));
    }
    let expired = std::fs::read(fixtures.join("synthetic/protobuf-status-410-expired.pb"))
        .expect("protobuf Status fixture");
    seeds.push(response_input(310, 0, PROTOBUF, "", &expired));
    let pf = b"Too many requests, please try again later.\n";
    seeds.push(response_input(329, 0, TEXT, "1", pf));
    seeds.push(response_input(329, 1, TEXT, "86400000", pf));
    seeds.push(response_input(
        403,
        0,
        JSON,
        "Sun, 06 Nov 1994 08:49:37 GMT",
        br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"The list operation against pods could not be completed at this time, please try again.","reason":"ServerTimeout","details":{"name":"list","kind":"pods","retryAfterSeconds":2147483647},"code":500}"#,
    ));
    seeds.push(response_input(
        309,
        1,
        JSON,
        "",
        br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"web-0\" already exists","reason":"AlreadyExists","details":{"name":"web-0","kind":"pods","causes":[{"reason":"FieldValueInvalid","message":"x","field":"metadata.name"}]},"code":409}"#,
    ));
    seeds.push(response_input(
        402,
        0,
        HTML,
        "99999999999999999999999",
        b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>",
    ));
    let mut huge = b"<html>".to_vec();
    huge.extend(std::iter::repeat_n(b"\xe2\x82\xac\xff".as_slice(), 2048).flatten());
    seeds.push(response_input(400, 0, HTML, "", &huge));
    seeds.push(response_input(100, 2, JSON, "", br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","details":{"name":"web-0","kind":"pods"}}"#));
    seeds.push(response_input(
        100,
        0,
        JSON,
        "",
        br#"{"kind":"Status","status":"Failure","code":500,"reason":"InternalError"}"#,
    ));
    seeds
}

/// Every recorded JSON watch body: the derived `.jsonl` files, the watch
/// exchanges of the k8s-openapi replays, and client-go's raw chunked
/// `events` response (de-chunked).
pub fn json_watch_bodies(fixtures: &Path) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    let derived = fixtures.join("recorded/derived-from-k8s-openapi-replays");
    for version in ["v1-32", "v1-36"] {
        for name in [
            "watch-pods.jsonl",
            "watchlist-pods-sendInitialEvents.jsonl",
            "watch-customresource.jsonl",
        ] {
            bodies.push(std::fs::read(derived.join(version).join(name)).expect("jsonl fixture"));
        }
    }
    for exchange in replay_exchanges(fixtures) {
        if exchange.url.contains("watch=true") {
            bodies.push(exchange.body.into_bytes());
        }
    }
    let events =
        fixtures.join("recorded/client-go-dynamic-testdata/TestGoldenResponse/responses/events");
    let raw = std::fs::read(events).expect("client-go events fixture");
    bodies.push(dechunk(&raw).into_iter().flatten().collect());
    bodies
}

/// One recorded HTTP exchange of the k8s-openapi test replays.
#[derive(Debug)]
pub struct ReplayExchange {
    /// The replay file it came from.
    pub file: String,
    /// The request URL.
    pub url: String,
    /// The response status.
    pub status: u16,
    /// The response body.
    pub body: String,
}

/// Every exchange of every replay file, v1-32 and v1-36.
pub fn replay_exchanges(fixtures: &Path) -> Vec<ReplayExchange> {
    let mut out = Vec::new();
    for version in ["v1-32", "v1-36"] {
        let dir = fixtures
            .join("recorded/k8s-openapi-test-replays")
            .join(version);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("replay file");
            let exchanges: Vec<serde_json::Value> =
                serde_json::from_str(&text).expect("replay file is a JSON array");
            for exchange in exchanges {
                out.push(ReplayExchange {
                    file: format!("{version}/{}", file.file_name().unwrap().to_string_lossy()),
                    url: exchange["request_url"].as_str().unwrap_or("").to_owned(),
                    status: exchange["response_status_code"].as_u64().unwrap_or(0) as u16,
                    body: exchange["response_body"].as_str().unwrap_or("").to_owned(),
                });
            }
        }
    }
    out
}

/// The chunks of a raw HTTP/1.1 response with `Transfer-Encoding: chunked`,
/// exactly as the server framed them.
///
/// # Panics
///
/// On a response that is not well-formed chunked HTTP/1.1 (fixtures only).
pub fn dechunk(raw: &[u8]) -> Vec<Vec<u8>> {
    let header_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers")
        + 4;
    let mut rest = &raw[header_end..];
    let mut chunks = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size = std::str::from_utf8(&rest[..line_end]).expect("chunk size is ASCII");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        rest = &rest[line_end + 2..];
        if size == 0 {
            return chunks;
        }
        chunks.push(rest[..size].to_vec());
        rest = &rest[size + 2..];
    }
}
