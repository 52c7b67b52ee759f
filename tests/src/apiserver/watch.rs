//! Watch streams: a task per watch polls the model's [`Watch`] after every
//! change, encodes each event as one JSON line and sends it as its own
//! chunk (hyper flushes each). It asks for a bookmark every bookmark
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
use super::response::{Body, Negotiated, Shape, StreamCut, encode};
use super::table::{self, IncludeObject};
use crate::model::{Watch, WatchPoll};

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
    /// The plural resource name (for table columns).
    pub resource: String,
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
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.media_type()),
    );
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
        let (pending, ended) = {
            let model = shared.model();
            loop {
                if batch.len() >= BATCH {
                    break (false, false);
                }
                match watch.poll(&model, Instant::now()) {
                    WatchPoll::Event(event) => batch.push(event),
                    WatchPoll::Pending => break (true, false),
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
    encode(
        view.negotiated.format,
        &json!({"type": kind, "object": object}),
    )
    .map(Bytes::from)
}

fn shape(view: &View, object: &Value, first: &mut bool) -> Value {
    match view.negotiated.shape {
        Shape::Table => {
            let t = table::table(&view.resource, &[object], json!({}), view.include, *first);
            *first = false;
            t
        }
        Shape::Metadata => table::partial_metadata(object),
        Shape::Object | Shape::Discovery => object.clone(),
    }
}
