use proptest::prelude::*;

use super::*;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = len.to_be_bytes()[1..].to_vec();
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn settings(entries: &[(u16, u32)]) -> Vec<u8> {
    let payload: Vec<u8> = entries
        .iter()
        .flat_map(|(id, value)| id.to_be_bytes().into_iter().chain(value.to_be_bytes()))
        .collect();
    frame(0x4, 0, 0, &payload)
}

fn events(observer: &mut FrameObserver) -> Vec<FrameEvent> {
    std::iter::from_fn(|| observer.poll_event()).collect()
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A connection's bytes: the client opens streams 1 and 3 (GET, END_STREAM on
/// HEADERS), the server answers both, ends 1, resets nothing; the client
/// resets 3 (a dropped body).
fn conversation() -> (Vec<u8>, Vec<u8>) {
    let mut sent = PREFACE.to_vec();
    sent.extend(settings(&[(0x2, 0)]));
    sent.extend(frame(0x4, 0x1, 0, &[])); // ACK of the server's SETTINGS
    sent.extend(frame(0x1, 0x5, 1, &[0x82; 20])); // HEADERS, END_STREAM|END_HEADERS
    sent.extend(frame(0x1, 0x5, 3, &[0x82; 20]));
    sent.extend(frame(0x3, 0, 3, &8u32.to_be_bytes())); // RST_STREAM CANCEL
    let mut received = settings(&[(0x3, 100), (0x4, 65535)]);
    received.extend(frame(0x4, 0x1, 0, &[]));
    received.extend(frame(0x1, 0x4, 1, &[0x88; 7])); // response HEADERS
    received.extend(frame(0x1, 0x4, 3, &[0x88; 7]));
    received.extend(frame(0x0, 0, 1, &[b'x'; 300]));
    received.extend(frame(0x0, 0x1, 1, b"{}")); // END_STREAM
    (sent, received)
}

#[test]
fn shard_frame_observer_reports_settings_streams_and_resets() {
    let (sent, received) = conversation();
    let mut observer = FrameObserver::new();
    observer.handle_sent(&sent);
    assert_eq!(
        events(&mut observer),
        [
            FrameEvent::StreamOpened(1),
            FrameEvent::StreamOpened(3),
            FrameEvent::StreamClosed(3),
        ]
    );
    assert_eq!(observer.open_streams(), 1);
    observer.handle_received(&received);
    assert_eq!(
        events(&mut observer),
        [
            FrameEvent::Settings {
                max_concurrent_streams: Some(100)
            },
            FrameEvent::StreamClosed(1),
        ]
    );
    assert_eq!(observer.open_streams(), 0);
}

#[test]
fn shard_frame_observer_goaway_closes_streams_above_last_id() {
    let mut observer = FrameObserver::new();
    let mut sent = PREFACE.to_vec();
    for id in [1, 3, 5, 7] {
        sent.extend(frame(0x1, 0x5, id, &[0x82]));
    }
    observer.handle_sent(&sent);
    let mut goaway = 3u32.to_be_bytes().to_vec();
    goaway.extend(0u32.to_be_bytes());
    goaway.extend(b"debug data");
    observer.handle_received(&frame(0x7, 0, 0, &goaway));
    let seen = events(&mut observer);
    assert_eq!(
        seen[4..],
        [
            FrameEvent::GoAway {
                last_stream_id: 3,
                error_code: 0
            },
            FrameEvent::StreamClosed(5),
            FrameEvent::StreamClosed(7),
        ]
    );
    assert_eq!(observer.open_streams(), 2);
}

#[test]
fn shard_frame_observer_ignores_settings_ack_and_server_streams() {
    let mut observer = FrameObserver::new();
    observer.handle_received(&frame(0x4, 0x1, 0, &[]));
    observer.handle_received(&frame(0x1, 0x5, 2, &[0x88])); // not a client stream
    observer.handle_received(&settings(&[(0x1, 4096)]));
    assert_eq!(
        events(&mut observer),
        [FrameEvent::Settings {
            max_concurrent_streams: None
        }]
    );
}

proptest! {
    /// However the bytes are cut, the observer sees the same events.
    #[test]
    fn shard_frame_observer_split_anywhere_yields_same_events(
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let (sent, received) = conversation();
        let mut whole = FrameObserver::new();
        whole.handle_sent(&sent);
        whole.handle_received(&received);
        let expected = events(&mut whole);

        let mut split = FrameObserver::new();
        for bytes in [&sent, &received] {
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
            points.push(0);
            points.push(bytes.len());
            points.sort_unstable();
            for pair in points.windows(2) {
                let piece = &bytes[pair[0]..pair[1]];
                if std::ptr::eq(bytes, &sent) {
                    split.handle_sent(piece);
                } else {
                    split.handle_received(piece);
                }
            }
        }
        prop_assert_eq!(events(&mut split), expected);
    }

    /// Garbage never panics the observer, and it never tracks more streams than allowed.
    #[test]
    fn shard_frame_observer_survives_any_bytes(
        sent in proptest::collection::vec(any::<u8>(), 0..600),
        received in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut observer = FrameObserver::new();
        observer.handle_sent(&sent);
        observer.handle_received(&received);
        let _ = events(&mut observer);
        prop_assert!(observer.open_streams() <= MAX_TRACKED_STREAMS);
    }
}

fn config(cap: u32, max_connections: usize) -> ShardConfig {
    ShardConfig {
        max_streams_per_connection: cap,
        headroom: 10,
        max_connections,
    }
}

/// Assigns, connects what opens, admits, and puts the stream on the wire.
fn open_stream(shards: &mut Shards, stream_ids: &mut u32) -> Ticket {
    let Ok(Assignment::Shard { ticket, opens }) = shards.assign() else {
        panic!("no shard");
    };
    if opens {
        shards.handle_connected(ticket.connection());
    }
    assert!(shards.admit(ticket), "{ticket:?} not admitted");
    shards.handle_frame(ticket.connection(), FrameEvent::StreamOpened(*stream_ids));
    *stream_ids += 2;
    ticket
}

#[test]
fn shard_assign_fills_connections_up_to_the_cap() {
    let mut shards = Shards::new(config(90, 8));
    let mut ids = 1;
    let tickets: Vec<Ticket> = (0..250)
        .map(|_| open_stream(&mut shards, &mut ids))
        .collect();
    assert_eq!(shards.active_connections(), 3); // ceil(250 / 90)
    let mut per_connection = BTreeMap::new();
    for t in &tickets {
        *per_connection.entry(t.connection()).or_insert(0) += 1;
    }
    assert_eq!(
        per_connection.values().copied().collect::<Vec<_>>(),
        [90, 90, 70]
    );
}

#[test]
fn shard_burst_while_connecting_shares_the_new_connection() {
    let mut shards = Shards::new(config(90, 8));
    let assignments: Vec<Assignment> = (0..100).map(|_| shards.assign().unwrap()).collect();
    let opened = assignments
        .iter()
        .filter(|a| matches!(a, Assignment::Shard { opens: true, .. }))
        .count();
    assert_eq!(opened, 2, "90 wait on the first connection, 10 on a second");
    let Assignment::Shard { ticket, .. } = assignments[0] else {
        unreachable!()
    };
    assert!(
        !shards.admit(ticket),
        "not admitted before the connection is ready"
    );
}

#[test]
fn shard_released_slots_are_reused() {
    let mut shards = Shards::new(config(2, 1));
    let mut ids = 1;
    let first = open_stream(&mut shards, &mut ids);
    open_stream(&mut shards, &mut ids);
    assert_eq!(
        shards.assign(),
        Err(ShardsExhausted {
            connections: 1,
            streams_per_connection: 2
        })
    );
    shards.handle_frame(first.connection(), FrameEvent::StreamClosed(1));
    let again = open_stream(&mut shards, &mut ids);
    assert_eq!(again.connection(), first.connection());
    assert_eq!(shards.streams(first.connection()), Some(2));
}

#[test]
fn shard_streams_go_to_the_least_loaded_connection() {
    let mut shards = Shards::new(config(3, 4));
    let mut ids = 1;
    let tickets: Vec<Ticket> = (0..6).map(|_| open_stream(&mut shards, &mut ids)).collect();
    let (a, b) = (tickets[0].connection(), tickets[3].connection());
    assert_ne!(a, b);
    // Two streams of the second connection end: the next two go there.
    shards.handle_frame(b, FrameEvent::StreamClosed(7));
    shards.handle_frame(b, FrameEvent::StreamClosed(9));
    shards.handle_frame(a, FrameEvent::StreamClosed(1));
    assert_eq!(open_stream(&mut shards, &mut ids).connection(), b);
    assert_eq!(open_stream(&mut shards, &mut ids).connection(), a);
    assert_eq!(shards.streams(a), Some(3));
    assert_eq!(shards.streams(b), Some(2));
}

#[test]
fn shard_server_settings_lower_the_limit_and_void_excess_tickets() {
    let mut shards = Shards::new(config(90, 4));
    let tickets: Vec<Ticket> = (0..60)
        .map(|_| match shards.assign().unwrap() {
            Assignment::Shard { ticket, .. } => ticket,
            Assignment::Http1 => unreachable!(),
        })
        .collect();
    let connection = tickets[0].connection();
    shards.handle_frame(
        connection,
        FrameEvent::Settings {
            max_concurrent_streams: Some(50),
        },
    );
    shards.handle_connected(connection);
    assert_eq!(shards.limit(connection), Some(40));
    // Admitted in any order, only the first 40 places go.
    let admitted = tickets.iter().rev().filter(|t| shards.admit(**t)).count();
    assert_eq!(admitted, 40);
    assert_eq!(shards.streams(connection), Some(40));
    // The voided ones assign again: onto a second connection.
    let Ok(Assignment::Shard { ticket, opens }) = shards.assign() else {
        panic!()
    };
    assert!(opens);
    assert_ne!(ticket.connection(), connection);
}

#[test]
fn shard_dead_connections_are_forgotten_and_replaced() {
    let mut shards = Shards::new(config(90, 2));
    let mut ids = 1;
    let first = open_stream(&mut shards, &mut ids);
    let connection = first.connection();
    shards.handle_closed(connection);
    assert_eq!(shards.poll_forgotten(), Some(connection));
    assert_eq!(shards.poll_forgotten(), None);
    assert!(!shards.is_usable(connection));
    let next = open_stream(&mut shards, &mut ids);
    assert_ne!(next.connection(), connection);
    assert_eq!(shards.active_connections(), 1);
    // Late events for the dead connection change nothing.
    shards.handle_frame(connection, FrameEvent::StreamClosed(1));
    assert_eq!(shards.streams(connection), None);
}

#[test]
fn shard_goaway_drains_then_forgets_the_connection() {
    let mut shards = Shards::new(config(90, 1));
    let mut ids = 1;
    let first = open_stream(&mut shards, &mut ids);
    let connection = first.connection();
    let Ok(Assignment::Shard {
        ticket: waiting, ..
    }) = shards.assign()
    else {
        panic!()
    };
    shards.handle_frame(
        connection,
        FrameEvent::GoAway {
            last_stream_id: 1,
            error_code: 0,
        },
    );
    assert!(!shards.is_usable(connection));
    assert!(
        !shards.admit(waiting),
        "a draining connection takes no streams"
    );
    // A draining connection does not count against the bound: a new one opens.
    let next = open_stream(&mut shards, &mut ids);
    assert_ne!(next.connection(), connection);
    assert_eq!(shards.poll_forgotten(), None, "its stream still runs");
    shards.handle_frame(connection, FrameEvent::StreamClosed(1));
    assert_eq!(shards.poll_forgotten(), Some(connection));
}

#[test]
fn shard_http1_server_sends_streams_to_http1() {
    let mut shards = Shards::new(ShardConfig::default());
    let Ok(Assignment::Shard { ticket, .. }) = shards.assign() else {
        panic!()
    };
    shards.handle_http1_only(ticket.connection());
    assert!(shards.is_http1_only());
    assert!(!shards.admit(ticket));
    assert_eq!(shards.assign(), Ok(Assignment::Http1));
}

#[derive(Clone, Debug)]
enum Op {
    Assign,
    Admit(usize),
    Cancel(usize),
    Connect(usize),
    Close(usize),
    Settings(usize, u32),
    GoAway(usize),
    EndStream(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Assign),
        4 => any::<usize>().prop_map(Op::Admit),
        1 => any::<usize>().prop_map(Op::Cancel),
        2 => any::<usize>().prop_map(Op::Connect),
        1 => any::<usize>().prop_map(Op::Close),
        1 => (any::<usize>(), 0u32..120).prop_map(|(c, m)| Op::Settings(c, m)),
        1 => any::<usize>().prop_map(Op::GoAway),
        3 => any::<usize>().prop_map(Op::EndStream),
    ]
}

proptest! {
    /// Under any sequence of inputs: no connection is ever sent more streams
    /// than its limit, the connection bound holds, a new connection opens only
    /// when every usable one is full, and a forgotten connection is never
    /// assigned again.
    #[test]
    fn shard_table_never_exceeds_its_limits(
        cap in 1u32..6,
        max_connections in 1usize..4,
        ops in proptest::collection::vec(op(), 0..200),
    ) {
        let mut shards = Shards::new(config(cap, max_connections));
        let mut tickets: Vec<Ticket> = Vec::new();
        // Streams on the wire: (connection, stream id).
        let mut wire: Vec<(ConnectionId, u32)> = Vec::new();
        let mut next_stream = 1;
        let mut forgotten = BTreeSet::new();
        let mut known: BTreeSet<ConnectionId> = BTreeSet::new();
        let pick = |n: usize, i: usize| (n > 0).then(|| i % n);
        for op in ops {
            match op {
                Op::Assign => {
                    let usable_with_room = known
                        .iter()
                        .filter(|c| shards.is_usable(**c))
                        .any(|c| shards.streams(*c) < shards.limit(*c));
                    match shards.assign() {
                        Ok(Assignment::Shard { ticket, opens }) => {
                            prop_assert!(!forgotten.contains(&ticket.connection()));
                            prop_assert_eq!(opens, !usable_with_room);
                            known.insert(ticket.connection());
                            tickets.push(ticket);
                        }
                        Ok(Assignment::Http1) => prop_assert!(false, "never told HTTP/1.1"),
                        Err(_) => prop_assert!(!usable_with_room),
                    }
                }
                Op::Admit(i) => if let Some(i) = pick(tickets.len(), i) {
                    let ticket = tickets.swap_remove(i);
                    let connection = ticket.connection();
                    let before_on_wire = wire.iter().filter(|(c, _)| *c == connection).count() as u32;
                    if shards.admit(ticket) {
                        prop_assert!(before_on_wire < shards.limit(connection).unwrap());
                        shards.handle_frame(connection, FrameEvent::StreamOpened(next_stream));
                        wire.push((connection, next_stream));
                        next_stream += 2;
                    }
                },
                Op::Cancel(i) => if let Some(i) = pick(tickets.len(), i) {
                    shards.cancel(tickets.swap_remove(i));
                },
                Op::Connect(i) => if let Some(i) = pick(known.len(), i) {
                    shards.handle_connected(*known.iter().nth(i).unwrap());
                },
                Op::Close(i) => if let Some(i) = pick(known.len(), i) {
                    let connection = *known.iter().nth(i).unwrap();
                    shards.handle_closed(connection);
                    wire.retain(|(c, _)| *c != connection);
                },
                Op::Settings(i, max) => if let Some(i) = pick(known.len(), i) {
                    let connection = *known.iter().nth(i).unwrap();
                    shards.handle_frame(connection, FrameEvent::Settings { max_concurrent_streams: Some(max) });
                },
                Op::GoAway(i) => if let Some(i) = pick(known.len(), i) {
                    let connection = *known.iter().nth(i).unwrap();
                    shards.handle_frame(connection, FrameEvent::GoAway { last_stream_id: u32::MAX >> 1, error_code: 0 });
                },
                Op::EndStream(i) => if let Some(i) = pick(wire.len(), i) {
                    let (connection, id) = wire.swap_remove(i);
                    shards.handle_frame(connection, FrameEvent::StreamClosed(id));
                },
            }
            while let Some(gone) = shards.poll_forgotten() {
                forgotten.insert(gone);
                known.remove(&gone);
                wire.retain(|(c, _)| *c != gone);
            }
            prop_assert!(shards.active_connections() <= max_connections);
            for c in &known {
                let on_wire = wire.iter().filter(|(w, _)| w == c).count() as u32;
                prop_assert!(on_wire <= cap, "{on_wire} streams on {c:?}, cap {cap}");
            }
        }
    }
}
