//! Properties of the codec over generated frames and arbitrary bytes:
//! encode→decode is the identity, decoding never panics, truncated and oversize input give
//! the right typed error.
#![allow(clippy::unwrap_used, missing_docs)]

use pixelparty_protocol::client::{
    Delete, Hello, HistoryRequest, Paint, Ping, RoomRequest, SendDirect, SendRoom, Subscribe, Unsubscribe,
};
use pixelparty_protocol::limits::{
    FRAME_HEADER_LEN, MAX_AGENT_BYTES, MAX_FRAME_PAYLOAD, MAX_HISTORY_PAGE, MAX_NAME_BYTES, MAX_REASON_BYTES,
    MAX_TEXT_BYTES,
};
use pixelparty_protocol::server::{
    Ack, Closing, Cooldown, Deleted, DirectMessage, Error, HistoryEntry, HistoryPage, Pixels, Pong, Presence,
    PresenceEntry, Resync, RoomMessage, Social, TileData, Welcome,
};
use pixelparty_protocol::types::WireTile;
use pixelparty_protocol::{
    ClientFrame, ClientKind, CloseReason, ConvKind, DecodeError, Decoded, ErrorCode, List, PixelUpdate, PixelsHead,
    PresenceKind, Role, ServerFrame, SocialKind, TileCursor, client_frames, server_frames,
};
use proptest::prelude::*;

/// Owned material from which any frame can be built.
#[derive(Debug, Clone)]
struct Material {
    variant: u8,
    a: u32,
    b: u32,
    c: u64,
    d: u64,
    small: u16,
    byte: u8,
    short: String,
    name: String,
    text: String,
    reason: String,
    cursors: Vec<(u32, u64)>,
    tiles: Vec<u32>,
    updates: Vec<(u16, u8)>,
    data: Vec<u8>,
    entries: Vec<(u64, u32, u64, String, String)>,
    people: Vec<(u32, String)>,
}

fn bounded_string(max_bytes: usize) -> impl Strategy<Value = String> {
    // Any chars, then trimmed to the byte limit on a char boundary.
    proptest::string::string_regex(".{0,40}").unwrap().prop_map(move |mut s| {
        while s.len() > max_bytes {
            s.pop();
        }
        s
    })
}

fn material() -> impl Strategy<Value = Material> {
    (
        (any::<u8>(), any::<u32>(), any::<u32>(), any::<u64>(), any::<u64>(), any::<u16>(), any::<u8>()),
        (
            bounded_string(MAX_AGENT_BYTES),
            bounded_string(MAX_NAME_BYTES),
            bounded_string(MAX_TEXT_BYTES),
            bounded_string(MAX_REASON_BYTES),
        ),
        (
            proptest::collection::vec((any::<u32>(), any::<u64>()), 0..20),
            proptest::collection::vec(any::<u32>(), 0..20),
            proptest::collection::vec((any::<u16>(), any::<u8>()), 0..200),
            proptest::collection::vec(any::<u8>(), 0..512),
        ),
        (
            proptest::collection::vec(
                (
                    any::<u64>(),
                    any::<u32>(),
                    any::<u64>(),
                    bounded_string(MAX_NAME_BYTES),
                    bounded_string(MAX_TEXT_BYTES),
                ),
                0..MAX_HISTORY_PAGE,
            ),
            proptest::collection::vec((any::<u32>(), bounded_string(MAX_NAME_BYTES)), 0..30),
        ),
    )
        .prop_map(
            |(
                (variant, a, b, c, d, small, byte),
                (short, name, text, reason),
                (cursors, tiles, updates, data),
                (entries, people),
            )| {
                Material {
                    variant,
                    a,
                    b,
                    c,
                    d,
                    small,
                    byte,
                    short,
                    name,
                    text,
                    reason,
                    cursors,
                    tiles,
                    updates,
                    data,
                    entries,
                    people,
                }
            },
        )
}

fn pick<T: Copy>(all: &[T], n: impl Into<u64>) -> T {
    all[(n.into() % all.len() as u64) as usize]
}

fn check_client(m: &Material) {
    let cursors: Vec<TileCursor> = m.cursors.iter().map(|&(t, c)| TileCursor::new(t, c)).collect();
    let tiles: Vec<WireTile> = m.tiles.iter().map(|&t| WireTile::new(t)).collect();
    let conv = pick(ConvKind::ALL, m.byte);
    let frame = match m.variant % 12 {
        0 => ClientFrame::Hello(Hello { version: m.small, kind: pick(ClientKind::ALL, m.byte), agent: &m.short }),
        1 => ClientFrame::Subscribe(Subscribe { tiles: &cursors }),
        2 => ClientFrame::Unsubscribe(Unsubscribe { tiles: &tiles }),
        3 => ClientFrame::Paint(Paint { req: m.a, x: m.small, y: m.b as u16, colour: m.byte }),
        4 => ClientFrame::JoinRoom(RoomRequest { req: m.a, room: m.b }),
        5 => ClientFrame::LeaveRoom(RoomRequest { req: m.a, room: m.b }),
        6 => ClientFrame::SendRoom(SendRoom { req: m.a, room: m.b, text: &m.text }),
        7 => ClientFrame::SendDirect(SendDirect { req: m.a, to: m.b, text: &m.text }),
        8 => ClientFrame::Delete(Delete { req: m.a, kind: conv, conv: m.b, seq: m.c }),
        9 => ClientFrame::History(HistoryRequest {
            req: m.a,
            kind: conv,
            conv: m.b,
            before: m.c,
            limit: m.small % (MAX_HISTORY_PAGE as u16 + 1),
        }),
        10 => ClientFrame::Who(RoomRequest { req: m.a, room: m.b }),
        _ => ClientFrame::Ping(Ping { nonce: m.c }),
    };
    let mut buf = Vec::new();
    frame.encode(&mut buf).unwrap();
    assert_eq!(buf.len(), frame.encoded_len());
    match ClientFrame::decode(&buf).unwrap() {
        Decoded::Frame { frame: back, len } => {
            assert_eq!(back, frame);
            assert_eq!(len, buf.len());
        }
        Decoded::Incomplete { .. } => panic!("whole frame reported incomplete"),
    }
    check_truncations(&buf, |b| ClientFrame::decode(b).map(|d| matches!(d, Decoded::Incomplete { .. })));
}

fn check_server(m: &Material) {
    let tiles: Vec<WireTile> = m.tiles.iter().map(|&t| WireTile::new(t)).collect();
    let updates: Vec<PixelUpdate> = m.updates.iter().map(|&(o, c)| PixelUpdate::new(o, c)).collect();
    let entries: Vec<HistoryEntry<'_>> = m
        .entries
        .iter()
        .map(|(seq, author, time_ms, name, text)| HistoryEntry {
            seq: *seq,
            author: *author,
            time_ms: *time_ms,
            author_name: name,
            text,
        })
        .collect();
    let people: Vec<PresenceEntry<'_>> =
        m.people.iter().map(|(user, name)| PresenceEntry { user: *user, name }).collect();
    let bpp = pick(&[1u8, 2, 4, 8], m.byte);
    let palette: Vec<[u8; 3]> = m.data.chunks_exact(3).take(1 << bpp).map(|c| [c[0], c[1], c[2]]).collect();
    let conv = pick(ConvKind::ALL, m.byte);
    let frame = match m.variant % 15 {
        0 => ServerFrame::Welcome(Welcome {
            version: m.small,
            user: m.a,
            role: pick(Role::ALL, m.byte),
            name: &m.name,
            width: m.a,
            height: m.b,
            bpp,
            tile_size: pick(&[8u16, 16, 32, 64, 128, 256], m.small),
            cooldown_ms: m.b,
            ready_at_ms: m.c,
            server_time_ms: m.d,
            palette: &palette,
        }),
        1 => ServerFrame::Ack(Ack { req: m.a, value: m.c }),
        2 => ServerFrame::Error(Error {
            req: m.a,
            code: pick(ErrorCode::ALL, m.small),
            retry_after_ms: m.b,
            message: &m.reason,
        }),
        3 => ServerFrame::Pixels(Pixels { head: PixelsHead::new(m.a, m.c, m.d), updates: &updates }),
        4 => ServerFrame::TileData(TileData { tile: m.a, seq: m.c, data: &m.data }),
        5 => ServerFrame::Resync(Resync { tiles: &tiles }),
        6 => ServerFrame::RoomMessage(RoomMessage {
            room: m.a,
            seq: m.c,
            author: m.b,
            time_ms: m.d,
            author_name: &m.name,
            text: &m.text,
        }),
        7 => ServerFrame::DirectMessage(DirectMessage {
            from: m.a,
            to: m.b,
            seq: m.c,
            time_ms: m.d,
            from_name: &m.name,
            text: &m.text,
        }),
        8 => ServerFrame::Deleted(Deleted { kind: conv, conv: m.a, seq: m.c }),
        9 => ServerFrame::HistoryPage(HistoryPage { req: m.a, kind: conv, conv: m.b, entries: List::Items(&entries) }),
        10 => ServerFrame::Presence(Presence {
            room: m.a,
            kind: pick(PresenceKind::ALL, m.byte),
            entries: List::Items(&people),
        }),
        11 => ServerFrame::Cooldown(Cooldown { ready_at_ms: m.c, cooldown_ms: m.a }),
        12 => ServerFrame::Pong(Pong { nonce: m.c, server_time_ms: m.d }),
        13 => ServerFrame::Social(Social { kind: pick(SocialKind::ALL, m.byte), id: m.a, name: &m.name }),
        _ => ServerFrame::Closing(Closing { reason: pick(CloseReason::ALL, m.byte), message: &m.reason }),
    };
    let mut buf = Vec::new();
    frame.encode(&mut buf).unwrap();
    assert_eq!(buf.len(), frame.encoded_len());
    match ServerFrame::decode(&buf).unwrap() {
        Decoded::Frame { frame: back, len } => {
            assert_eq!(back, frame);
            assert_eq!(len, buf.len());
            // Re-encoding the decoded (raw-list) form gives the same bytes.
            let mut again = Vec::new();
            back.encode(&mut again).unwrap();
            assert_eq!(again, buf);
        }
        Decoded::Incomplete { .. } => panic!("whole frame reported incomplete"),
    }
    check_truncations(&buf, |b| ServerFrame::decode(b).map(|d| matches!(d, Decoded::Incomplete { .. })));
}

/// Every strict prefix of a frame decodes as "incomplete", and as a transport message it is
/// a `TruncatedMessage` error.
fn check_truncations(buf: &[u8], is_incomplete: impl Fn(&[u8]) -> Result<bool, DecodeError>) {
    let step = (buf.len() / 16).max(1);
    for cut in (0..buf.len()).step_by(step) {
        assert_eq!(is_incomplete(&buf[..cut]), Ok(true), "prefix of {cut} bytes");
        if cut > 0 {
            let first = client_frames(&buf[..cut]).next().unwrap();
            assert!(matches!(first, Err(DecodeError::TruncatedMessage { .. })));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn client_frames_round_trip(m in material()) {
        check_client(&m);
    }

    #[test]
    fn server_frames_round_trip(m in material()) {
        check_server(&m);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        for frame in client_frames(&bytes) { if frame.is_err() { break; } }
        for frame in server_frames(&bytes) { if frame.is_err() { break; } }
        pixelparty_protocol::fuzzing::round_trip(&bytes);
    }

    #[test]
    fn arbitrary_payloads_never_panic(opcode in any::<u8>(), payload in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = ClientFrame::decode_payload(opcode, &payload);
        let _ = ServerFrame::decode_payload(opcode, &payload);
        let mut framed = vec![opcode];
        framed.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        framed.extend_from_slice(&payload);
        pixelparty_protocol::fuzzing::round_trip(&framed);
    }

    #[test]
    fn oversize_lengths_are_refused_from_the_header(opcode in any::<u8>(), extra in 1u32..1_000_000) {
        let len = MAX_FRAME_PAYLOAD as u32 + extra;
        let mut buf = vec![opcode];
        buf.extend_from_slice(&len.to_le_bytes());
        let expected = DecodeError::FrameTooLarge { len, max: MAX_FRAME_PAYLOAD as u32 };
        prop_assert_eq!(ClientFrame::decode(&buf).unwrap_err(), expected);
        prop_assert_eq!(ServerFrame::decode(&buf).unwrap_err(), expected);
    }
}

#[test]
fn several_frames_share_one_message() {
    let mut msg = Vec::new();
    ClientFrame::Ping(Ping { nonce: 1 }).encode(&mut msg).unwrap();
    ClientFrame::Paint(Paint { req: 2, x: 3, y: 4, colour: 5 }).encode(&mut msg).unwrap();
    ClientFrame::SendRoom(SendRoom { req: 3, room: 1, text: "hi" }).encode(&mut msg).unwrap();
    let frames: Vec<_> = client_frames(&msg).collect::<Result<_, _>>().unwrap();
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[1], ClientFrame::Paint(Paint { req: 2, x: 3, y: 4, colour: 5 }));
}

#[test]
fn encoder_refuses_what_the_decoder_would_refuse() {
    let long = "x".repeat(MAX_TEXT_BYTES + 1);
    let mut out = Vec::new();
    let err = ClientFrame::SendRoom(SendRoom { req: 1, room: 1, text: &long }).encode(&mut out);
    assert!(err.is_err());
    assert!(out.is_empty(), "a refused frame writes nothing");
    let tiles = vec![WireTile::new(0); 2000];
    assert!(ClientFrame::Unsubscribe(Unsubscribe { tiles: &tiles }).encode(&mut out).is_err());
    let updates = vec![PixelUpdate::new(0, 0); 50_000];
    let frame = ServerFrame::Pixels(Pixels { head: PixelsHead::new(0, 0, 1), updates: &updates });
    assert!(frame.encode(&mut out).is_err());
    assert!(out.is_empty());
}

#[test]
fn pixel_batches_cost_under_six_bytes_per_update() {
    // A tile batch of n updates costs 25 + 3n bytes: at most 6 bytes per update from 9 on.
    for n in [9usize, 64, 1000] {
        let updates = vec![PixelUpdate::new(1, 2); n];
        let frame = ServerFrame::Pixels(Pixels { head: PixelsHead::new(0, 0, n as u64), updates: &updates });
        assert!(frame.encoded_len() <= 6 * n, "{n} updates cost {} bytes", frame.encoded_len());
        assert_eq!(frame.encoded_len(), FRAME_HEADER_LEN + 20 + 3 * n);
    }
}
