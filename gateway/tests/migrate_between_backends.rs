//! `pixelparty migrate` copies a fjall store into an empty PostgreSQL database and back into
//! an empty fjall store, and every list reads the same on all three: users with their hashes
//! and roles, friendships, requests and blocks, bans, rooms and their messages (a deleted one
//! stays deleted), direct messages, the canvas journal, tile snapshots and the recovered
//! canvas, and the audit log entry for entry. Sessions are not copied. A target that is not
//! empty is refused with a clear message and a failing status. Needs the local PostgreSQL
//! server (see `TestDb`: skipped without one, failing under `CI=true`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::process::{Command, Output};

use pixelparty_protocol::Geometry;
use pixelparty_storage::backend::{AuditDraft, RoomDelete, TickWrite};
use pixelparty_storage::testing::TestDb;
use pixelparty_storage::{
    AuditAction, AuditEntry, Ban, Conversation, Durability, Message, NetBan, PixelRecord, RecoveredCanvas, Relation,
    Role, Room, Store, StoreConfig, TileSnapshot, User,
};

/// Everything a store holds that the migration must carry over, as read back.
#[derive(Debug, PartialEq)]
struct Dump {
    users: Vec<User>,
    /// Per user: friends, incoming and outgoing requests, blocks.
    relations: Vec<[Vec<Relation>; 4]>,
    user_bans: Vec<(u32, Ban)>,
    net_bans: Vec<NetBan>,
    audit: Vec<AuditEntry>,
    rooms: Vec<Room>,
    room_messages: Vec<Vec<Message>>,
    conversations: Vec<Vec<Conversation>>,
    direct_messages: Vec<(u32, u32, Vec<Message>)>,
    geometry: Option<Geometry>,
    journal: Vec<PixelRecord>,
    tiles: Vec<TileSnapshot>,
    canvas: RecoveredCanvas,
}

fn dump(store: &Store) -> Dump {
    let users = store.wait(|b| b.users(0, 1000)).unwrap();
    let mut relations = Vec::new();
    let mut conversations = Vec::new();
    let mut direct_messages = Vec::new();
    for u in &users {
        let id = u.id;
        relations.push([
            store.wait(move |b| b.friends_of(id, 1000)).unwrap(),
            store.wait(move |b| b.incoming_requests(id, 1000)).unwrap(),
            store.wait(move |b| b.outgoing_requests(id, 1000)).unwrap(),
            store.wait(move |b| b.blocks_of(id, 1000)).unwrap(),
        ]);
        let list = store.wait(move |b| b.conversations(id, 1000)).unwrap();
        for c in list.iter().filter(|c| c.peer >= id) {
            let peer = c.peer;
            let last = store.wait(move |b| b.direct_last_seq(id, peer)).unwrap();
            let messages =
                (1..=last).map(|seq| store.wait(move |b| b.direct_message(id, peer, seq)).unwrap().unwrap()).collect();
            direct_messages.push((id, peer, messages));
        }
        conversations.push(list);
    }
    let rooms = store.wait(|b| b.rooms(0, 1000)).unwrap();
    let room_messages = rooms
        .iter()
        .map(|r| {
            let room = r.id;
            let last = store.wait(move |b| b.room_last_seq(room)).unwrap();
            (1..=last).map(|seq| store.wait(move |b| b.room_message(room, seq)).unwrap().unwrap()).collect()
        })
        .collect();
    let geometry = store.wait(|b| b.canvas_geometry()).unwrap();
    let canvas = store.wait(move |b| b.recover_canvas(geometry.expect("a canvas"))).unwrap();
    Dump {
        users,
        relations,
        user_bans: store.wait(|b| b.user_bans(1000)).unwrap(),
        net_bans: store.wait(|b| b.net_bans()).unwrap(),
        audit: store.wait(|b| b.audit_log(u64::MAX, 1000)).unwrap(),
        rooms,
        room_messages,
        conversations,
        direct_messages,
        geometry,
        journal: store.wait(|b| b.journal_after(0, 100_000)).unwrap(),
        tiles: store.wait(|b| b.tile_snapshots()).unwrap(),
        canvas,
    }
}

fn open_fjall(path: &Path) -> Store {
    let mut config = StoreConfig::new(path);
    config.durability = Durability::None;
    Store::open(config).unwrap()
}

fn pixel(seq: u64, time_ms: u64) -> PixelRecord {
    PixelRecord { seq, x: (seq * 7 % 64) as u16, y: (seq * 3 % 64) as u16, colour: (seq % 16) as u8, user: 2, time_ms }
}

fn message(seq: u64, author: u32, text: &str) -> Message {
    Message { seq, author, time_ms: 1_000 + seq, text: text.into(), deleted: false }
}

/// A store with a bit of everything, including what a naive copy gets wrong: a deleted room
/// message and a deleted direct message, a lifted ban (audited, no longer in force), an admin
/// deletion (audited) and journal entries spread over time.
fn fill(store: &Store) {
    for (i, name) in ["alice", "bob", "carol", "dave"].into_iter().enumerate() {
        let hash = format!("$argon2id$v=19$m=1024,t=1,p=1$fake{i}");
        store.wait(move |b| b.create_user(name.into(), hash, Role::User, 10 + i as u64)).unwrap();
    }
    store.wait(|b| b.set_role(1, Role::Admin, 0, 20)).unwrap();
    store.wait(|b| b.create_session([7; 32], 2, 20, 1_000_000)).unwrap();
    store.wait(|b| b.request_friend(1, 2, 100)).unwrap();
    store.wait(|b| b.accept_friend(2, 1, 110)).unwrap();
    store.wait(|b| b.request_friend(3, 1, 120)).unwrap();
    store.wait(|b| b.block(4, 2, 130)).unwrap();
    let ban = |reason: &str, created_ms, expires_ms| Ban { reason: reason.into(), by: 1, created_ms, expires_ms };
    store.wait(move |b| b.ban_user(3, ban("flood", 135, None))).unwrap();
    store.wait(|b| b.unban_user(3, 1, 136)).unwrap();
    store.wait(move |b| b.ban_user(4, ban("spam", 140, Some(9_999_999)))).unwrap();
    store.wait(move |b| b.ban_net("10.1.0.0/16".parse().unwrap(), ban("abuse", 150, None))).unwrap();
    let entry =
        AuditDraft { actor: 1, action: AuditAction::Kick, target: "2".into(), detail: "bye".into(), time_ms: 160 };
    store.wait(move |b| b.audit(entry)).unwrap();

    store.wait(|b| b.create_room("lobby".into(), 1, 200)).unwrap();
    store.wait(|b| b.create_room("Games".into(), 2, 210)).unwrap();
    let lobby = (1..=5).map(|s| message(s, 1 + (s % 2) as u32, &format!("lobby {s}"))).collect();
    let games = (1..=3).map(|s| message(s, 3, &format!("games {s}"))).collect();
    store
        .wait(move |b| b.commit_tick(TickWrite { messages: vec![(1, lobby), (2, games)], ..TickWrite::default() }))
        .unwrap();
    let deletes = vec![RoomDelete { room: 1, seq: 2, by_admin: false }, RoomDelete { room: 2, seq: 1, by_admin: true }];
    store.wait(move |b| b.commit_tick(TickWrite { deletes, now_ms: 300, ..TickWrite::default() })).unwrap();

    for (from, to, t) in [(1, 2, 400), (2, 1, 401), (1, 2, 402), (3, 1, 403), (1, 3, 404), (2, 2, 405)] {
        store.wait(move |b| b.append_direct(from, to, t, format!("dm at {t}"))).unwrap();
    }
    store.wait(|b| b.delete_direct(1, 2, 2)).unwrap();

    let geometry = Geometry::new(64, 64, 4, 32).unwrap();
    store.wait(move |b| b.init_canvas(geometry)).unwrap();
    // Times 0, 2, 4, ...: several journal blocks of at most 5 ms each in the copy.
    let first: Vec<PixelRecord> = (1..=40).map(|s| pixel(s, 5_000 + 2 * s)).collect();
    store.wait(move |b| b.commit_tick(TickWrite { pixels: first, ..TickWrite::default() })).unwrap();
    let canvas = store.wait(move |b| b.recover_canvas(geometry)).unwrap();
    let snapshot = TileSnapshot { tile: 0, seq: canvas.tile_seqs[0], data: canvas.tiles[0].clone() };
    store.wait(move |b| b.save_tiles(vec![snapshot])).unwrap();
    let later: Vec<PixelRecord> = (41..=60).map(|s| pixel(s, 9_000 + s)).collect();
    store.wait(move |b| b.commit_tick(TickWrite { pixels: later, ..TickWrite::default() })).unwrap();
}

fn migrate(from: &str, to: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pixelparty"))
        .args(["migrate", "--from", from, "--to", to])
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs")
}

fn assert_succeeded(out: &Output) -> String {
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "migrate failed ({}):\n{stdout}\n{stderr}", out.status);
    stdout.into_owned()
}

#[test]
fn fjall_to_postgres_and_back_keeps_everything() {
    let Some(db) = TestDb::create_blocking() else { return };
    let dir = tempfile::tempdir().unwrap();
    // The source as a server keeps it: a data directory holding `db`, named by the data dir.
    let (data, back) = (dir.path().join("data"), dir.path().join("back"));
    let source = {
        let store = open_fjall(&data.join("db"));
        fill(&store);
        dump(&store)
    }; // The store is closed here: fjall holds a lock on its directory.
    assert_eq!(source.audit.len(), 7, "set_role, two bans, unban, address ban, kick, admin deletion");
    let dms_1_2 = source.direct_messages.iter().find(|(a, b, _)| (*a, *b) == (1, 2)).expect("alice and bob talk");
    assert!(source.room_messages[0][1].deleted && dms_1_2.2[1].deleted, "a deleted message of each kind");

    let stdout = assert_succeeded(&migrate(&format!("fjall:{}", data.display()), &db.url()));
    assert!(stdout.contains("not copied: login sessions"), "{stdout}");
    assert!(stdout.contains("verified"), "{stdout}");
    {
        let pg = Store::open(db.store_config(dir.path().join("unused"))).unwrap();
        assert_eq!(dump(&pg), source, "PostgreSQL holds what the fjall store held");
        assert!(pg.wait(|b| b.session([7; 32], 30)).unwrap().is_none(), "sessions are not copied");
    }

    let stdout = assert_succeeded(&migrate(&db.url(), &format!("fjall:{}", back.display())));
    assert!(stdout.contains("verified"), "{stdout}");
    let round_trip = dump(&open_fjall(&back));
    assert_eq!(round_trip, source, "fjall -> PostgreSQL -> fjall changes nothing");

    for (from, to) in [(format!("fjall:{}", back.display()), db.url()), (db.url(), format!("fjall:{}", back.display()))]
    {
        let out = migrate(&from, &to);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "a non-empty target must be refused ({from} -> {to})");
        assert!(stderr.contains("the target store is not empty"), "{stderr}");
    }
}
