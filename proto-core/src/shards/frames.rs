//! [`FrameObserver`]: watches the plaintext HTTP/2 bytes of one client
//! connection go by, in both directions, and reports what the shard table
//! needs — the server's `SETTINGS_MAX_CONCURRENT_STREAMS`, a `GOAWAY`, and
//! streams opening and closing. It never changes or holds the bytes (the
//! HTTP/2 stack still does all the protocol work); it keeps a 9-byte frame
//! header, a few payload bytes of the frames it reads, and one entry per
//! open stream.
//!
//! Stream lifecycle as seen here (RFC 9113 §5.1, client side):
//!
//! | frame | direction | effect |
//! |---|---|---|
//! | HEADERS on a new odd stream | sent | opened (half-closed local if END_STREAM) |
//! | DATA or HEADERS with END_STREAM | either | that side ended; both ended → closed |
//! | RST_STREAM | either | closed |
//! | GOAWAY(last) | received | every open stream above `last` closed |

use std::collections::{BTreeMap, VecDeque};

/// The client connection preface (RFC 9113 §3.4), sent before any frame.
const PREFACE_LEN: usize = 24;
const HEADER_LEN: usize = 9;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;

const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;

/// Most streams tracked at once; streams opened past it are not reported
/// (hyper never opens that many, and a server cannot make it).
pub const MAX_TRACKED_STREAMS: usize = 1 << 16;

/// What the observer saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameEvent {
    /// The server's SETTINGS frame (each one, ACKs aside), with its
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` if it named one.
    Settings {
        /// The server's limit on concurrent streams, if the frame set it.
        max_concurrent_streams: Option<u32>,
    },
    /// The server sent GOAWAY: it takes no new streams on this connection.
    GoAway {
        /// The highest stream id the server may still process.
        last_stream_id: u32,
        /// The HTTP/2 error code (0: graceful).
        error_code: u32,
    },
    /// The client sent HEADERS opening this stream.
    StreamOpened(u32),
    /// This stream ended: both sides finished it, or one reset it.
    StreamClosed(u32),
}

/// Observes one HTTP/2 connection's plaintext bytes; see the module doc.
#[derive(Debug)]
pub struct FrameObserver {
    sent: Reader,
    received: Reader,
    /// Open streams: (client finished, server finished).
    streams: BTreeMap<u32, (bool, bool)>,
    events: VecDeque<FrameEvent>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Sent,
    Received,
}

/// One direction's framing state.
#[derive(Debug)]
struct Reader {
    side: Side,
    preface_left: usize,
    header: [u8; HEADER_LEN],
    header_len: usize,
    /// The frame whose payload is being skipped or read.
    frame: Option<Frame>,
}

#[derive(Clone, Copy, Debug)]
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    /// Payload bytes still to come.
    left: u32,
    /// Payload bytes kept (a SETTINGS entry or the start of GOAWAY).
    kept: [u8; 8],
    kept_len: usize,
    max_concurrent_streams: Option<u32>,
}

impl Default for FrameObserver {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameObserver {
    /// An observer for a connection about to send its preface.
    pub fn new() -> Self {
        Self {
            sent: Reader::new(Side::Sent, PREFACE_LEN),
            received: Reader::new(Side::Received, 0),
            streams: BTreeMap::new(),
            events: VecDeque::new(),
        }
    }

    /// How many streams are open (opened, not yet closed).
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// Bytes the client wrote, in order.
    pub fn handle_sent(&mut self, bytes: &[u8]) {
        let mut reader = std::mem::replace(&mut self.sent, Reader::new(Side::Sent, 0));
        reader.feed(bytes, self);
        self.sent = reader;
    }

    /// Bytes the client read, in order.
    pub fn handle_received(&mut self, bytes: &[u8]) {
        let mut reader = std::mem::replace(&mut self.received, Reader::new(Side::Received, 0));
        reader.feed(bytes, self);
        self.received = reader;
    }

    /// The next thing seen, oldest first.
    pub fn poll_event(&mut self) -> Option<FrameEvent> {
        self.events.pop_front()
    }

    /// A frame header was read completely.
    fn frame_started(&mut self, side: Side, frame: &Frame) {
        match (frame.kind, side) {
            (HEADERS, Side::Sent)
                if frame.stream % 2 == 1 && !self.streams.contains_key(&frame.stream) =>
            {
                if self.streams.len() >= MAX_TRACKED_STREAMS {
                    return;
                }
                self.streams.insert(frame.stream, (false, false));
                self.events
                    .push_back(FrameEvent::StreamOpened(frame.stream));
                if frame.flags & END_STREAM != 0 {
                    self.end(side, frame.stream);
                }
            }
            (DATA | HEADERS, _) if frame.flags & END_STREAM != 0 => self.end(side, frame.stream),
            (RST_STREAM, _) => self.close(frame.stream),
            _ => {}
        }
    }

    /// A frame's payload was read completely (for the frames whose payload matters).
    fn frame_finished(&mut self, side: Side, frame: &Frame) {
        if side != Side::Received || frame.stream != 0 {
            return;
        }
        match frame.kind {
            SETTINGS if frame.flags & ACK == 0 => self.events.push_back(FrameEvent::Settings {
                max_concurrent_streams: frame.max_concurrent_streams,
            }),
            GOAWAY if frame.kept_len >= 8 => {
                let last_stream_id =
                    u32::from_be_bytes(frame.kept[..4].try_into().unwrap_or([0; 4])) & 0x7fff_ffff;
                let error_code = u32::from_be_bytes(frame.kept[4..8].try_into().unwrap_or([0; 4]));
                self.events.push_back(FrameEvent::GoAway {
                    last_stream_id,
                    error_code,
                });
                let refused: Vec<u32> = self
                    .streams
                    .range(last_stream_id.saturating_add(1)..)
                    .map(|(id, _)| *id)
                    .collect();
                for id in refused {
                    self.close(id);
                }
            }
            _ => {}
        }
    }

    fn end(&mut self, side: Side, stream: u32) {
        let Some(halves) = self.streams.get_mut(&stream) else {
            return;
        };
        match side {
            Side::Sent => halves.0 = true,
            Side::Received => halves.1 = true,
        }
        if *halves == (true, true) {
            self.close(stream);
        }
    }

    fn close(&mut self, stream: u32) {
        if self.streams.remove(&stream).is_some() {
            self.events.push_back(FrameEvent::StreamClosed(stream));
        }
    }
}

impl Reader {
    fn new(side: Side, preface_left: usize) -> Self {
        Self {
            side,
            preface_left,
            header: [0; HEADER_LEN],
            header_len: 0,
            frame: None,
        }
    }

    fn feed(&mut self, mut bytes: &[u8], observer: &mut FrameObserver) {
        let skip = self.preface_left.min(bytes.len());
        self.preface_left -= skip;
        bytes = &bytes[skip..];
        while !bytes.is_empty() {
            let Some(frame) = &mut self.frame else {
                let take = (HEADER_LEN - self.header_len).min(bytes.len());
                self.header[self.header_len..self.header_len + take]
                    .copy_from_slice(&bytes[..take]);
                self.header_len += take;
                bytes = &bytes[take..];
                if self.header_len == HEADER_LEN {
                    self.header_len = 0;
                    let h = self.header;
                    let frame = Frame {
                        left: u32::from_be_bytes([0, h[0], h[1], h[2]]),
                        kind: h[3],
                        flags: h[4],
                        stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
                        kept: [0; 8],
                        kept_len: 0,
                        max_concurrent_streams: None,
                    };
                    observer.frame_started(self.side, &frame);
                    self.frame = Some(frame);
                    self.finish_if_done(observer);
                }
                continue;
            };
            let take = (frame.left as usize).min(bytes.len());
            let payload = &bytes[..take];
            bytes = &bytes[take..];
            frame.left -= take as u32;
            if self.side == Side::Received && frame.stream == 0 {
                match frame.kind {
                    SETTINGS => {
                        for &byte in payload {
                            frame.kept[frame.kept_len] = byte;
                            frame.kept_len += 1;
                            if frame.kept_len == 6 {
                                frame.kept_len = 0;
                                let id = u16::from_be_bytes([frame.kept[0], frame.kept[1]]);
                                if id == SETTINGS_MAX_CONCURRENT_STREAMS {
                                    frame.max_concurrent_streams = Some(u32::from_be_bytes([
                                        frame.kept[2],
                                        frame.kept[3],
                                        frame.kept[4],
                                        frame.kept[5],
                                    ]));
                                }
                            }
                        }
                    }
                    GOAWAY => {
                        let room = 8 - frame.kept_len;
                        let keep = room.min(payload.len());
                        frame.kept[frame.kept_len..frame.kept_len + keep]
                            .copy_from_slice(&payload[..keep]);
                        frame.kept_len += keep;
                    }
                    _ => {}
                }
            }
            self.finish_if_done(observer);
        }
    }

    fn finish_if_done(&mut self, observer: &mut FrameObserver) {
        if let Some(frame) = self.frame
            && frame.left == 0
        {
            self.frame = None;
            observer.frame_finished(self.side, &frame);
        }
    }
}
