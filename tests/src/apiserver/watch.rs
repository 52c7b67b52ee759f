//! Watch streams: a task per watch polls the model's [`Watch`] after every
//! change, encodes each event (a JSON line, a length-prefixed protobuf
//! frame, or a CBOR item of a CBOR sequence) and sends it as its own chunk
//! (hyper flushes each). It asks for a bookmark every bookmark
//! interval, ends at `timeoutSeconds`, at server shutdown or when the client
//! goes away, and applies stream faults (cut or stall after K bytes).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use windlass_proto::watch::WatchEvent;

use super::Shared;
use super::response::{Body, Negotiated, Shape, StreamCut, encode, put_bytes};
use super::table::{self, IncludeObject};
use crate::model::{Watch, WatchEnd, WatchPoll};
use windlass_proto::codec::Format;

/// A fault the next watch stream gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamFaultKind {
    /// Drop the connection once this many body bytes are sent.
    Cut(u64),
    /// Send nothing more once this many body bytes are sent.
    Stall(u64),
}

/// How events are shaped for this watch.
#[derive(Clone, Debug)]
pub struct View {
    /// The negotiated format and shape.
    pub negotiated: Negotiated,
    /// How table rows are printed.
    pub printer: table::Printer,
    /// `includeObject` for tables.
    pub include: IncludeObject,
}

/// Most events taken from the model under one lock.
const BATCH: usize = 64;
/// Chunks buffered between the watch task and the connection.
const CHANNEL: usize = 16;

/// Starts streaming `watch`; answers with the response head at once.
pub fn start(shared: &Arc<Shared>, watch: Watch, view: View) -> Response<Body> {
    let (tx, rx) = mpsc::channel(CHANNEL);
    let fault = shared.take_stream_fault();
    let format = view.negotiated.format;
    tokio::spawn(run(Arc::clone(shared), watch, view, tx, fault));
    let mut response = Response::new(Body::Stream(rx));
    let content_type = match format {
        Format::Protobuf => "application/vnd.kubernetes.protobuf;stream=watch",
        Format::Cbor => "application/cbor-seq",
        Format::Json => "application/json",
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

async fn run(
    shared: Arc<Shared>,
    mut watch: Watch,
    view: View,
    tx: mpsc::Sender<Result<Bytes, StreamCut>>,
    fault: Option<StreamFaultKind>,
) {
    let mut changed = shared.changed.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    let mut sent: u64 = 0;
    let mut first = true;
    let interval = shared.bookmark_interval;
    let mut next_bookmark = tokio::time::Instant::now() + interval;
    loop {
        changed.borrow_and_update();
        let mut batch = Vec::new();
        let mut restarted = false;
        let (pending, ended) = {
            let model = shared.model();
            loop {
                if batch.len() >= BATCH {
                    break (false, false);
                }
                match watch.poll(&model, Instant::now()) {
                    WatchPoll::Event(event) => batch.push(event),
                    WatchPoll::Pending => break (true, false),
                    WatchPoll::Ended(WatchEnd::ServerRestarted) => {
                        restarted = true;
                        break (false, true);
                    }
                    WatchPoll::Ended(_) => break (false, true),
                }
            }
        };
        for event in batch {
            let Some(chunk) = encode_event(&watch, &view, event, &mut first) else {
                return;
            };
            match fault {
                Some(StreamFaultKind::Cut(limit)) | Some(StreamFaultKind::Stall(limit))
                    if sent + chunk.len() as u64 >= limit =>
                {
                    let keep = usize::try_from(limit - sent).unwrap_or(chunk.len());
                    if keep > 0 && tx.send(Ok(chunk.slice(..keep))).await.is_err() {
                        return;
                    }
                    if let Some(StreamFaultKind::Cut(_)) = fault {
                        // hyper drops unflushed bytes when the body fails, and it
                        // flushes only once the body is pending: let the connection
                        // take the prefix and go idle before failing it.
                        let drained = async {
                            while tx.capacity() < tx.max_capacity() {
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        };
                        let _ = tokio::time::timeout(Duration::from_secs(2), drained).await;
                        let _ = tx.send(Err(StreamCut)).await;
                        return;
                    }
                    // Stalled: hold the connection open, send nothing.
                    tokio::select! {
                        _ = shutdown.wait_for(|s| *s) => {}
                        _ = tx.closed() => {}
                    }
                    return;
                }
                _ => {}
            }
            sent += chunk.len() as u64;
            if tx.send(Ok(chunk)).await.is_err() {
                return;
            }
        }
        if ended {
            if restarted {
                // A restarting server drops its connections mid-stream.
                let _ = tx.send(Err(StreamCut)).await;
            }
            return;
        }
        if !pending {
            continue;
        }
        let deadline = watch.poll_timeout().map(tokio::time::Instant::from_std);
        let wake = deadline.map_or(next_bookmark, |d| d.min(next_bookmark));
        tokio::select! {
            _ = changed.changed() => {}
            _ = tokio::time::sleep_until(wake) => {
                if tokio::time::Instant::now() >= next_bookmark {
                    watch.request_bookmark();
                    next_bookmark = tokio::time::Instant::now() + interval;
                }
            }
            _ = shutdown.wait_for(|s| *s) => return,
            _ = tx.closed() => return,
        }
    }
}

/// One event as a line in the negotiated format and shape.
fn encode_event(
    watch: &Watch,
    view: &View,
    event: WatchEvent<Arc<Value>>,
    first: &mut bool,
) -> Option<Bytes> {
    let (kind, object) = match event {
        WatchEvent::Added(o) => ("ADDED", shape(view, &o, first)),
        WatchEvent::Modified(o) => ("MODIFIED", shape(view, &o, first)),
        WatchEvent::Deleted(o) => ("DELETED", shape(view, &o, first)),
        WatchEvent::Bookmark(b) => {
            let mut metadata = json!({"resourceVersion": b.resource_version});
            if !b.annotations.is_empty() {
                metadata["annotations"] = json!(b.annotations);
            }
            let object = match view.negotiated.shape {
                Shape::Metadata => {
                    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata})
                }
                _ => {
                    json!({"kind": watch.kind(), "apiVersion": watch.api_version(), "metadata": metadata})
                }
            };
            ("BOOKMARK", object)
        }
        WatchEvent::Error(status) => {
            let mut object = serde_json::to_value(&*status).ok()?;
            object["kind"] = "Status".into();
            object["apiVersion"] = "v1".into();
            ("ERROR", object)
        }
    };
    match view.negotiated.format {
        Format::Protobuf => {
            // A length-prefixed meta.v1.WatchEvent{type, object: RawExtension{raw}},
            // the raw object in its own k8s\0 envelope.
            let raw = encode(Format::Protobuf, &object)?;
            let mut extension = Vec::with_capacity(raw.len() + 8);
            put_bytes(&mut extension, 1, &raw);
            let mut event = Vec::with_capacity(extension.len() + 16);
            put_bytes(&mut event, 1, kind.as_bytes());
            put_bytes(&mut event, 2, &extension);
            let mut frame = Vec::with_capacity(event.len() + 4);
            frame.extend_from_slice(&u32::try_from(event.len()).ok()?.to_be_bytes());
            frame.extend_from_slice(&event);
            Some(Bytes::from(frame))
        }
        format => encode(format, &json!({"type": kind, "object": object})).map(Bytes::from),
    }
}

fn shape(view: &View, object: &Value, first: &mut bool) -> Value {
    match view.negotiated.shape {
        Shape::Table => {
            let t = table::table(&view.printer, &[object], json!({}), view.include, *first);
            *first = false;
            t
        }
        Shape::Metadata => table::partial_metadata(object),
        Shape::Object | Shape::Discovery => object.clone(),
    }
}
