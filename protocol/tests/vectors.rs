//! The byte-exact vectors in `protocol/vectors/` against the Rust codec.
//!
//! `valid/*.json` describes a frame; `valid/*.bin` is its exact encoding. Each description is
//! encoded and compared with the file, and each file is decoded and compared with the
//! description. `invalid/*.bin` must fail with the error in its `.json`.
//!
//! After a deliberate wire change, `PIXELPARTY_BLESS=1 cargo test -p pixelparty-protocol
//! --test vectors` rewrites the `.bin` files from the descriptions (review the diff!).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};

use pixelparty_protocol::client::{
    Delete, Hello, HistoryRequest, Paint, Ping, RoomRequest, SendDirect, SendRoom, Subscribe, Unsubscribe,
};
use pixelparty_protocol::server::{
    Ack, Closing, Cooldown, Deleted, DirectMessage, Error, HistoryEntry, HistoryPage, Pixels, Pong, Presence,
    PresenceEntry, Resync, RoomMessage, Social, TileData, Welcome,
};
use pixelparty_protocol::types::WireTile;
use pixelparty_protocol::{
    ClientFrame, ClientKind, CloseReason, ConvKind, DecodeError, ErrorCode, List, PixelUpdate, PixelsHead,
    PresenceKind, Role, ServerFrame, SocialKind, TileCursor, client_frames, server_frames,
};
use serde_json::{Value, json};

fn dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors").join(kind)
}

fn vectors(kind: &str) -> Vec<(String, Value, PathBuf)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir(kind)).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let desc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            out.push((name, desc, path.with_extension("bin")));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no vectors found in {kind}");
    out
}

// ---- JSON field helpers -------------------------------------------------------------------

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("field {k} missing or not a number: {v}"))
}
fn u64s(v: &Value, k: &str) -> u64 {
    v[k].as_str().unwrap_or_else(|| panic!("u64 field {k} must be a decimal string")).parse().unwrap()
}
fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("field {k} missing or not a string: {v}"))
}
fn arr<'a>(v: &'a Value, k: &str) -> &'a Vec<Value> {
    v[k].as_array().unwrap_or_else(|| panic!("field {k} missing or not an array"))
}
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}
fn rgb(s: &str) -> [u8; 3] {
    let b = unhex(&s[1..]);
    [b[0], b[1], b[2]]
}
fn kind_name(k: ClientKind) -> &'static str {
    match k {
        ClientKind::Browser => "browser",
        ClientKind::Bot => "bot",
        ClientKind::Bench => "bench",
    }
}
fn conv_name(k: ConvKind) -> &'static str {
    match k {
        ConvKind::Room => "room",
        ConvKind::Direct => "direct",
    }
}
fn conv(v: &Value) -> ConvKind {
    match s(v, "kind") {
        "room" => ConvKind::Room,
        "direct" => ConvKind::Direct,
        other => panic!("bad conv kind {other}"),
    }
}
fn presence_name(k: PresenceKind) -> &'static str {
    match k {
        PresenceKind::Snapshot => "snapshot",
        PresenceKind::Joined => "joined",
        PresenceKind::Left => "left",
    }
}
fn role_name(r: Role) -> &'static str {
    match r {
        Role::User => "user",
        Role::Admin => "admin",
        Role::Visitor => "visitor",
    }
}
fn social_name(k: SocialKind) -> &'static str {
    match k {
        SocialKind::FriendRequest => "friend_request",
        SocialKind::RequestSent => "request_sent",
        SocialKind::FriendAdded => "friend_added",
        SocialKind::FriendRemoved => "friend_removed",
        SocialKind::Blocked => "blocked",
        SocialKind::Unblocked => "unblocked",
        SocialKind::Online => "online",
        SocialKind::Offline => "offline",
        SocialKind::RoomCreated => "room_created",
    }
}

// ---- JSON -> frame (borrowing from the JSON and from scratch vectors) ----------------------

/// Owned lists that frames borrow while being encoded.
#[derive(Default)]
struct Scratch {
    cursors: Vec<TileCursor>,
    tiles: Vec<WireTile>,
    updates: Vec<PixelUpdate>,
    bytes: Vec<u8>,
    palette: Vec<[u8; 3]>,
}

fn client_frame<'a>(name: &str, f: &'a Value, sc: &'a mut Scratch) -> ClientFrame<'a> {
    let room_req = || RoomRequest { req: u(f, "req") as u32, room: u(f, "room") as u32 };
    match name {
        "Hello" => ClientFrame::Hello(Hello {
            version: u(f, "version") as u16,
            kind: *ClientKind::ALL.iter().find(|k| kind_name(**k) == s(f, "kind")).unwrap(),
            agent: s(f, "agent"),
        }),
        "Subscribe" => {
            sc.cursors =
                arr(f, "tiles").iter().map(|t| TileCursor::new(u(t, "tile") as u32, u64s(t, "cursor"))).collect();
            ClientFrame::Subscribe(Subscribe { tiles: &sc.cursors })
        }
        "Unsubscribe" => {
            sc.tiles = arr(f, "tiles").iter().map(|t| WireTile::new(t.as_u64().unwrap() as u32)).collect();
            ClientFrame::Unsubscribe(Unsubscribe { tiles: &sc.tiles })
        }
        "Paint" => ClientFrame::Paint(Paint {
            req: u(f, "req") as u32,
            x: u(f, "x") as u16,
            y: u(f, "y") as u16,
            colour: u(f, "colour") as u8,
        }),
        "JoinRoom" => ClientFrame::JoinRoom(room_req()),
        "LeaveRoom" => ClientFrame::LeaveRoom(room_req()),
        "Who" => ClientFrame::Who(room_req()),
        "SendRoom" => {
            ClientFrame::SendRoom(SendRoom { req: u(f, "req") as u32, room: u(f, "room") as u32, text: s(f, "text") })
        }
        "SendDirect" => {
            ClientFrame::SendDirect(SendDirect { req: u(f, "req") as u32, to: u(f, "to") as u32, text: s(f, "text") })
        }
        "Delete" => ClientFrame::Delete(Delete {
            req: u(f, "req") as u32,
            kind: conv(f),
            conv: u(f, "conv") as u32,
            seq: u64s(f, "seq"),
        }),
        "History" => ClientFrame::History(HistoryRequest {
            req: u(f, "req") as u32,
            kind: conv(f),
            conv: u(f, "conv") as u32,
            before: u64s(f, "before"),
            limit: u(f, "limit") as u16,
        }),
        "Ping" => ClientFrame::Ping(Ping { nonce: u64s(f, "nonce") }),
        other => panic!("unknown client frame {other}"),
    }
}

fn history_entries(f: &Value) -> Vec<HistoryEntry<'_>> {
    arr(f, "entries")
        .iter()
        .map(|e| HistoryEntry {
            seq: u64s(e, "seq"),
            author: u(e, "author") as u32,
            time_ms: u64s(e, "time_ms"),
            author_name: s(e, "author_name"),
            text: s(e, "text"),
        })
        .collect()
}

fn presence_entries(f: &Value) -> Vec<PresenceEntry<'_>> {
    arr(f, "entries").iter().map(|e| PresenceEntry { user: u(e, "user") as u32, name: s(e, "name") }).collect()
}

/// Builds a server frame and hands it to `use_it` (history and presence entries borrow from a
/// local vector, so the frame cannot be returned).
fn with_server_frame(name: &str, f: &Value, use_it: impl FnOnce(ServerFrame<'_>)) {
    let mut sc = Scratch::default();
    let frame = match name {
        "Welcome" => {
            sc.palette = arr(f, "palette").iter().map(|c| rgb(c.as_str().unwrap())).collect();
            ServerFrame::Welcome(Welcome {
                version: u(f, "version") as u16,
                user: u(f, "user") as u32,
                role: *Role::ALL.iter().find(|r| role_name(**r) == s(f, "role")).unwrap(),
                name: s(f, "name"),
                width: u(f, "width") as u32,
                height: u(f, "height") as u32,
                bpp: u(f, "bpp") as u8,
                tile_size: u(f, "tile_size") as u16,
                cooldown_ms: u(f, "cooldown_ms") as u32,
                ready_at_ms: u64s(f, "ready_at_ms"),
                server_time_ms: u64s(f, "server_time_ms"),
                palette: &sc.palette,
            })
        }
        "Ack" => ServerFrame::Ack(Ack { req: u(f, "req") as u32, value: u64s(f, "value") }),
        "Error" => ServerFrame::Error(Error {
            req: u(f, "req") as u32,
            code: *ErrorCode::ALL.iter().find(|c| c.name() == s(f, "code")).unwrap(),
            retry_after_ms: u(f, "retry_after_ms") as u32,
            message: s(f, "message"),
        }),
        "Pixels" => {
            sc.updates = arr(f, "updates")
                .iter()
                .map(|p| PixelUpdate::new(u(p, "offset") as u16, u(p, "colour") as u8))
                .collect();
            ServerFrame::Pixels(Pixels {
                head: PixelsHead::new(u(f, "tile") as u32, u64s(f, "prev_seq"), u64s(f, "last_seq")),
                updates: &sc.updates,
            })
        }
        "TileData" => {
            sc.bytes = unhex(s(f, "data"));
            ServerFrame::TileData(TileData { tile: u(f, "tile") as u32, seq: u64s(f, "seq"), data: &sc.bytes })
        }
        "Resync" => {
            sc.tiles = arr(f, "tiles").iter().map(|t| WireTile::new(t.as_u64().unwrap() as u32)).collect();
            ServerFrame::Resync(Resync { tiles: &sc.tiles })
        }
        "RoomMessage" => ServerFrame::RoomMessage(RoomMessage {
            room: u(f, "room") as u32,
            seq: u64s(f, "seq"),
            author: u(f, "author") as u32,
            time_ms: u64s(f, "time_ms"),
            author_name: s(f, "author_name"),
            text: s(f, "text"),
        }),
        "DirectMessage" => ServerFrame::DirectMessage(DirectMessage {
            from: u(f, "from") as u32,
            to: u(f, "to") as u32,
            seq: u64s(f, "seq"),
            time_ms: u64s(f, "time_ms"),
            from_name: s(f, "from_name"),
            text: s(f, "text"),
        }),
        "Deleted" => ServerFrame::Deleted(Deleted { kind: conv(f), conv: u(f, "conv") as u32, seq: u64s(f, "seq") }),
        "HistoryPage" => {
            let entries = history_entries(f);
            let frame = ServerFrame::HistoryPage(HistoryPage {
                req: u(f, "req") as u32,
                kind: conv(f),
                conv: u(f, "conv") as u32,
                entries: List::Items(&entries),
            });
            return use_it(frame);
        }
        "Presence" => {
            let entries = presence_entries(f);
            let kind = *PresenceKind::ALL.iter().find(|k| presence_name(**k) == s(f, "kind")).unwrap();
            let frame =
                ServerFrame::Presence(Presence { room: u(f, "room") as u32, kind, entries: List::Items(&entries) });
            return use_it(frame);
        }
        "Cooldown" => ServerFrame::Cooldown(Cooldown {
            ready_at_ms: u64s(f, "ready_at_ms"),
            cooldown_ms: u(f, "cooldown_ms") as u32,
        }),
        "Pong" => ServerFrame::Pong(Pong { nonce: u64s(f, "nonce"), server_time_ms: u64s(f, "server_time_ms") }),
        "Closing" => ServerFrame::Closing(Closing {
            reason: *CloseReason::ALL.iter().find(|r| r.name() == s(f, "reason")).unwrap(),
            message: s(f, "message"),
        }),
        "Social" => ServerFrame::Social(Social {
            kind: *SocialKind::ALL.iter().find(|k| social_name(**k) == s(f, "kind")).unwrap(),
            id: u(f, "id") as u32,
            name: s(f, "name"),
        }),
        other => panic!("unknown server frame {other}"),
    };
    use_it(frame)
}

// ---- frame -> JSON -------------------------------------------------------------------------

fn client_json(frame: &ClientFrame<'_>) -> (&'static str, Value) {
    match frame {
        ClientFrame::Hello(h) => ("Hello", json!({"version": h.version, "kind": kind_name(h.kind), "agent": h.agent})),
        ClientFrame::Subscribe(sub) => (
            "Subscribe",
            json!({"tiles": sub.tiles.iter().map(|t| json!({"tile": t.tile(), "cursor": t.cursor().to_string()})).collect::<Vec<_>>()}),
        ),
        ClientFrame::Unsubscribe(un) => {
            ("Unsubscribe", json!({"tiles": un.tiles.iter().map(|t| t.get()).collect::<Vec<_>>()}))
        }
        ClientFrame::Paint(p) => ("Paint", json!({"req": p.req, "x": p.x, "y": p.y, "colour": p.colour})),
        ClientFrame::JoinRoom(r) => ("JoinRoom", json!({"req": r.req, "room": r.room})),
        ClientFrame::LeaveRoom(r) => ("LeaveRoom", json!({"req": r.req, "room": r.room})),
        ClientFrame::Who(r) => ("Who", json!({"req": r.req, "room": r.room})),
        ClientFrame::SendRoom(m) => ("SendRoom", json!({"req": m.req, "room": m.room, "text": m.text})),
        ClientFrame::SendDirect(m) => ("SendDirect", json!({"req": m.req, "to": m.to, "text": m.text})),
        ClientFrame::Delete(d) => {
            ("Delete", json!({"req": d.req, "kind": conv_name(d.kind), "conv": d.conv, "seq": d.seq.to_string()}))
        }
        ClientFrame::History(h) => (
            "History",
            json!({"req": h.req, "kind": conv_name(h.kind), "conv": h.conv, "before": h.before.to_string(), "limit": h.limit}),
        ),
        ClientFrame::Ping(p) => ("Ping", json!({"nonce": p.nonce.to_string()})),
    }
}

fn server_json(frame: &ServerFrame<'_>) -> (&'static str, Value) {
    match frame {
        ServerFrame::Welcome(w) => (
            "Welcome",
            json!({
                "version": w.version, "user": w.user, "role": role_name(w.role), "name": w.name,
                "width": w.width, "height": w.height, "bpp": w.bpp, "tile_size": w.tile_size,
                "cooldown_ms": w.cooldown_ms, "ready_at_ms": w.ready_at_ms.to_string(),
                "server_time_ms": w.server_time_ms.to_string(),
                "palette": w.palette.iter().map(|c| format!("#{}", hex(c).to_uppercase())).collect::<Vec<_>>(),
            }),
        ),
        ServerFrame::Ack(a) => ("Ack", json!({"req": a.req, "value": a.value.to_string()})),
        ServerFrame::Error(e) => (
            "Error",
            json!({"req": e.req, "code": e.code.name(), "retry_after_ms": e.retry_after_ms, "message": e.message}),
        ),
        ServerFrame::Pixels(p) => (
            "Pixels",
            json!({
                "tile": p.head.tile(), "prev_seq": p.head.prev_seq().to_string(),
                "last_seq": p.head.last_seq().to_string(),
                "updates": p.updates.iter().map(|u| json!({"offset": u.offset(), "colour": u.colour()})).collect::<Vec<_>>(),
            }),
        ),
        ServerFrame::TileData(t) => {
            ("TileData", json!({"tile": t.tile, "seq": t.seq.to_string(), "data": hex(t.data)}))
        }
        ServerFrame::Resync(r) => ("Resync", json!({"tiles": r.tiles.iter().map(|t| t.get()).collect::<Vec<_>>()})),
        ServerFrame::RoomMessage(m) => (
            "RoomMessage",
            json!({"room": m.room, "seq": m.seq.to_string(), "author": m.author, "time_ms": m.time_ms.to_string(), "author_name": m.author_name, "text": m.text}),
        ),
        ServerFrame::DirectMessage(m) => (
            "DirectMessage",
            json!({"from": m.from, "to": m.to, "seq": m.seq.to_string(), "time_ms": m.time_ms.to_string(), "from_name": m.from_name, "text": m.text}),
        ),
        ServerFrame::Deleted(d) => {
            ("Deleted", json!({"kind": conv_name(d.kind), "conv": d.conv, "seq": d.seq.to_string()}))
        }
        ServerFrame::HistoryPage(h) => (
            "HistoryPage",
            json!({
                "req": h.req, "kind": conv_name(h.kind), "conv": h.conv,
                "entries": h.entries.iter().map(|e| json!({"seq": e.seq.to_string(), "author": e.author, "time_ms": e.time_ms.to_string(), "author_name": e.author_name, "text": e.text})).collect::<Vec<_>>(),
            }),
        ),
        ServerFrame::Presence(p) => (
            "Presence",
            json!({
                "room": p.room, "kind": presence_name(p.kind),
                "entries": p.entries.iter().map(|e| json!({"user": e.user, "name": e.name})).collect::<Vec<_>>(),
            }),
        ),
        ServerFrame::Cooldown(c) => {
            ("Cooldown", json!({"ready_at_ms": c.ready_at_ms.to_string(), "cooldown_ms": c.cooldown_ms}))
        }
        ServerFrame::Pong(p) => {
            ("Pong", json!({"nonce": p.nonce.to_string(), "server_time_ms": p.server_time_ms.to_string()}))
        }
        ServerFrame::Closing(c) => ("Closing", json!({"reason": c.reason.name(), "message": c.message})),
        ServerFrame::Social(x) => ("Social", json!({"kind": social_name(x.kind), "id": x.id, "name": x.name})),
    }
}

fn error_json(e: DecodeError) -> Value {
    match e {
        DecodeError::UnknownOpcode { opcode } => json!({"kind": "UnknownOpcode", "opcode": opcode}),
        DecodeError::FrameTooLarge { len, max } => {
            json!({"kind": "FrameTooLarge", "len": len, "max": max})
        }
        DecodeError::TruncatedMessage { needed } => {
            json!({"kind": "TruncatedMessage", "needed": needed})
        }
        DecodeError::Truncated { opcode } => json!({"kind": "Truncated", "opcode": opcode}),
        DecodeError::TrailingBytes { opcode, extra } => {
            json!({"kind": "TrailingBytes", "opcode": opcode, "extra": extra})
        }
        DecodeError::StringTooLong { len, max } => {
            json!({"kind": "StringTooLong", "len": len, "max": max})
        }
        DecodeError::InvalidUtf8 => json!({"kind": "InvalidUtf8"}),
        DecodeError::CountTooLarge { count, max } => {
            json!({"kind": "CountTooLarge", "count": count, "max": max})
        }
        DecodeError::InvalidValue { opcode, field } => {
            json!({"kind": "InvalidValue", "opcode": opcode, "field": field})
        }
    }
}

// ---- the tests -----------------------------------------------------------------------------

fn encode_description(desc: &Value) -> Vec<u8> {
    let name = s(desc, "frame");
    let fields = &desc["fields"];
    let mut out = Vec::new();
    match s(desc, "direction") {
        "client" => {
            let mut sc = Scratch::default();
            client_frame(name, fields, &mut sc).encode(&mut out).unwrap();
        }
        "server" => with_server_frame(name, fields, |f| f.encode(&mut out).unwrap()),
        other => panic!("bad direction {other}"),
    }
    out
}

#[test]
fn valid_vectors_encode_byte_exact() {
    let bless = std::env::var_os("PIXELPARTY_BLESS").is_some();
    for (name, desc, bin) in vectors("valid") {
        let encoded = encode_description(&desc);
        if bless {
            std::fs::write(&bin, &encoded).unwrap();
        }
        let expected = std::fs::read(&bin).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(hex(&encoded), hex(&expected), "{name}: encoding differs from the vector file");
    }
}

#[test]
fn valid_vectors_decode_to_their_description() {
    for (name, desc, bin) in vectors("valid") {
        let bytes = std::fs::read(&bin).unwrap();
        let (frame_name, fields) = match s(&desc, "direction") {
            "client" => {
                let frames: Vec<_> = client_frames(&bytes).collect::<Result<_, _>>().unwrap();
                assert_eq!(frames.len(), 1, "{name}");
                client_json(&frames[0])
            }
            _ => {
                let frames: Vec<_> = server_frames(&bytes).collect::<Result<_, _>>().unwrap();
                assert_eq!(frames.len(), 1, "{name}");
                server_json(&frames[0])
            }
        };
        assert_eq!(frame_name, s(&desc, "frame"), "{name}");
        assert_eq!(fields, desc["fields"], "{name}: decoded fields differ");
    }
}

#[test]
fn every_frame_kind_has_a_vector() {
    let described: Vec<String> =
        vectors("valid").iter().map(|(_, d, _)| format!("{}:{}", s(d, "direction"), s(d, "frame"))).collect();
    let client = [
        "Hello",
        "Subscribe",
        "Unsubscribe",
        "Paint",
        "JoinRoom",
        "LeaveRoom",
        "SendRoom",
        "SendDirect",
        "Delete",
        "History",
        "Who",
        "Ping",
    ];
    let server = [
        "Welcome",
        "Ack",
        "Error",
        "Pixels",
        "TileData",
        "Resync",
        "RoomMessage",
        "DirectMessage",
        "Deleted",
        "HistoryPage",
        "Presence",
        "Cooldown",
        "Pong",
        "Closing",
        "Social",
    ];
    for f in client {
        assert!(described.contains(&format!("client:{f}")), "no vector for client frame {f}");
    }
    for f in server {
        assert!(described.contains(&format!("server:{f}")), "no vector for server frame {f}");
    }
}

#[test]
fn invalid_vectors_fail_with_their_error() {
    for (name, desc, bin) in vectors("invalid") {
        let bytes = std::fs::read(&bin).unwrap();
        let results: Vec<Result<(), DecodeError>> = match s(&desc, "direction") {
            "client" => client_frames(&bytes).map(|r| r.map(|_| ())).collect(),
            _ => server_frames(&bytes).map(|r| r.map(|_| ())).collect(),
        };
        let ok = results.iter().take_while(|r| r.is_ok()).count();
        assert_eq!(ok as u64, u(&desc, "frames_before_error"), "{name}");
        let err = results.get(ok).and_then(|r| r.err()).unwrap_or_else(|| panic!("{name}: no error"));
        assert_eq!(error_json(err), desc["error"], "{name}");
        assert_eq!(results.len(), ok + 1, "{name}: iteration must stop after an error");
    }
}
