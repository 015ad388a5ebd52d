//! The backend conformance suite: what every [`Backend`] must do, written against
//! `&dyn Backend` so that each backend's test file runs the same checks on a fresh backend
//! (see `pg_backend.rs`). Expectations are the fjall backend's behaviour (its unit tests in
//! `storage/src/*.rs` say the same things through `Db`/`Tx`).

use std::sync::Arc;

use pixelparty_protocol::Geometry;
use pixelparty_protocol::canvas::{get_pixel, set_pixel};
use pixelparty_storage::backend::{AuditDraft, Backend, Hidden, RoomDelete, TickWrite};
use pixelparty_storage::{
    AuditAction, Ban, FriendOutcome, Message, PixelRecord, Relation, Removed, Role, TileSnapshot,
};

fn none() -> Hidden {
    Arc::from(Vec::new())
}

fn hide(users: &[u32]) -> Hidden {
    Arc::from(users.to_vec())
}

fn msg(seq: u64, author: u32, text: &str) -> Message {
    Message { seq, author, time_ms: seq * 10, text: text.into(), deleted: false }
}

fn rec(seq: u64, x: u16, y: u16, colour: u8, user: u32, time_ms: u64) -> PixelRecord {
    PixelRecord { seq, x, y, colour, user, time_ms }
}

fn seqs(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.seq).collect()
}

async fn tick(b: &dyn Backend, pixels: Vec<PixelRecord>) {
    b.commit_tick(TickWrite { pixels, ..TickWrite::default() }).await.unwrap();
}

async fn users(b: &dyn Backend, n: u32) {
    for i in 0..n {
        b.create_user(format!("u{i}"), "h".into(), Role::User, 0).await.unwrap();
    }
}

/// Accounts: dense ids, case-insensitive unique names, roles with audit, sessions that expire
/// and are revoked.
pub async fn accounts_and_sessions(b: &dyn Backend) {
    let a = b.create_user("Alice".into(), "h1".into(), Role::User, 1).await.unwrap();
    let bob = b.create_user("bob".into(), "h2".into(), Role::Admin, 2).await.unwrap();
    assert_eq!((a.id, bob.id), (1, 2));
    assert_eq!(a.name, "Alice");
    assert!(b.create_user("ALICE".into(), "h3".into(), Role::User, 3).await.unwrap_err().is_conflict());
    assert!(b.create_user(String::new(), "h".into(), Role::User, 3).await.unwrap_err().is_invalid());
    assert!(b.create_user("x".repeat(33), "h".into(), Role::User, 3).await.unwrap_err().is_invalid());
    assert_eq!(b.user_by_name("aLiCe".into()).await.unwrap().unwrap(), a);
    assert!(b.user_by_name("İ".repeat(32_700)).await.unwrap().is_none(), "oversized names have no user");
    assert!(b.user_by_name(String::new()).await.unwrap().is_none());
    assert_eq!(b.user(2).await.unwrap().unwrap().role, Role::Admin);
    assert!(b.user(9).await.unwrap().is_none());
    let c = b.create_user("carol".into(), "h".into(), Role::User, 4).await.unwrap();
    assert_eq!(c.id, 3, "a refused create does not burn an id");
    assert_eq!(b.user_count().await.unwrap(), 3);
    assert_eq!(b.users(0, 10).await.unwrap().iter().map(|u| u.id).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(b.users(1, 1).await.unwrap().iter().map(|u| u.id).collect::<Vec<_>>(), [2]);
    assert!(b.users(3, 10).await.unwrap().is_empty());

    let admin = b.set_role(1, Role::Admin, 0, 5).await.unwrap();
    assert_eq!(admin.role, Role::Admin);
    assert_eq!(b.user(1).await.unwrap().unwrap().role, Role::Admin);
    let log = b.audit_log(u64::MAX, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].action, log[0].actor, log[0].target.as_str(), log[0].detail.as_str()),
        (AuditAction::SetRole, 0, "1", "admin")
    );
    assert_eq!(log[0].time_ms, 5);
    assert!(b.set_role(99, Role::Admin, 0, 5).await.unwrap_err().is_not_found());
    b.set_password_hash(2, "new".into()).await.unwrap();
    assert_eq!(b.user(2).await.unwrap().unwrap().password_hash, "new");
    assert!(b.set_password_hash(99, "x".into()).await.unwrap_err().is_not_found());

    let (t1, t2) = ([1u8; 32], [2u8; 32]);
    let s = b.create_session(t1, 3, 100, 50).await.unwrap();
    assert_eq!((s.user, s.created_ms, s.expires_ms), (3, 100, 150));
    b.create_session(t2, 3, 100, 50).await.unwrap();
    assert_eq!(b.session(t1, 149).await.unwrap(), Some(s));
    assert!(b.session(t1, 150).await.unwrap().is_none(), "expired");
    assert!(b.revoke_session(t1).await.unwrap());
    assert!(!b.revoke_session(t1).await.unwrap());
    assert!(b.session(t1, 120).await.unwrap().is_none());
    assert_eq!(b.revoke_user_sessions(3).await.unwrap(), 1);
    assert!(b.session(t2, 120).await.unwrap().is_none());
    assert_eq!(b.revoke_user_sessions(3).await.unwrap(), 0);
    assert!(b.create_session(t1, 99, 0, 1).await.unwrap_err().is_not_found());
}

/// The canvas as it was at a moment, rebuilt from the journal; refused once the journal's
/// start is pruned.
pub async fn canvas_at(b: &dyn Backend) {
    let g = Geometry::new(32, 16, 4, 16).unwrap();
    b.init_canvas(g).await.unwrap();
    let blank = pixelparty_storage::canvas::canvas_at(b, g, u64::MAX).await.unwrap();
    assert!(blank.tiles.iter().all(|t| t.iter().all(|&x| x == 0)), "an empty journal: a blank canvas");
    tick(b, vec![rec(1, 1, 1, 3, 1, 10), rec(2, 20, 0, 4, 1, 10)]).await;
    tick(b, vec![rec(3, 1, 1, 5, 2, 20)]).await; // the raid
    tick(b, vec![rec(4, 2, 2, 6, 2, 30)]).await;
    let at = |c: &pixelparty_storage::RecoveredCanvas, x: usize, y: usize| {
        let (tile, offset) = (x / 16, (y * 16 + x % 16) as u16);
        get_pixel(&c.tiles[tile], 4, offset)
    };
    let before = pixelparty_storage::canvas::canvas_at(b, g, 15).await.unwrap();
    assert_eq!((at(&before, 1, 1), at(&before, 20, 0), at(&before, 2, 2)), (3, 4, 0));
    let after = pixelparty_storage::canvas::canvas_at(b, g, 20).await.unwrap();
    assert_eq!((at(&after, 1, 1), at(&after, 2, 2)), (5, 0));
    let now = pixelparty_storage::canvas::canvas_at(b, g, u64::MAX).await.unwrap();
    assert_eq!(now.tiles, b.recover_canvas(g).await.unwrap().tiles, "the present equals recovery");
}

/// Names of many users in one call; unknown ids are left out.
pub async fn user_names(b: &dyn Backend) {
    users(b, 3).await;
    let mut names = b.user_names(vec![3, 1, 99, 1]).await.unwrap();
    names.sort();
    names.dedup();
    assert_eq!(names, [(1, "u0".to_string()), (3, "u2".to_string())]);
    assert!(b.user_names(Vec::new()).await.unwrap().is_empty());
}

/// The social graph's transitions and lists.
pub async fn social_graph(b: &dyn Backend) {
    users(b, 4).await;
    assert_eq!(b.request_friend(1, 2, 10).await.unwrap(), FriendOutcome::Requested);
    assert!(b.request_friend(1, 2, 11).await.unwrap_err().is_conflict(), "already pending");
    assert!(b.request_friend(1, 1, 11).await.unwrap_err().is_invalid());
    assert!(b.request_friend(1, 99, 0).await.unwrap_err().is_not_found());
    assert_eq!(b.incoming_requests(2, 10).await.unwrap(), vec![Relation { user: 1, since_ms: 10 }]);
    assert_eq!(b.outgoing_requests(1, 10).await.unwrap(), vec![Relation { user: 2, since_ms: 10 }]);
    b.accept_friend(2, 1, 20).await.unwrap();
    assert!(b.are_friends(1, 2).await.unwrap() && b.are_friends(2, 1).await.unwrap());
    assert_eq!(b.friends_of(1, 10).await.unwrap(), vec![Relation { user: 2, since_ms: 20 }]);
    assert!(b.incoming_requests(2, 10).await.unwrap().is_empty());
    assert!(b.request_friend(2, 1, 30).await.unwrap_err().is_conflict(), "already friends");
    assert!(b.accept_friend(3, 1, 0).await.unwrap_err().is_not_found());
    assert_eq!(b.remove_relation(2, 1).await.unwrap(), Removed::Friend);
    assert!(!b.are_friends(1, 2).await.unwrap());
    assert!(b.remove_relation(2, 1).await.unwrap_err().is_not_found());

    // Crossing requests make friends; decline and cancel.
    b.request_friend(3, 4, 0).await.unwrap();
    assert_eq!(b.request_friend(4, 3, 5).await.unwrap(), FriendOutcome::BecameFriends);
    assert!(b.are_friends(3, 4).await.unwrap());
    assert!(b.outgoing_requests(3, 10).await.unwrap().is_empty());
    b.request_friend(1, 3, 0).await.unwrap();
    b.request_friend(1, 4, 0).await.unwrap();
    b.request_friend(2, 3, 0).await.unwrap();
    assert_eq!(b.outgoing_requests(1, 10).await.unwrap().iter().map(|r| r.user).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(b.outgoing_requests(1, 1).await.unwrap().len(), 1, "limited");
    assert_eq!(b.incoming_requests(3, 10).await.unwrap().iter().map(|r| r.user).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(b.remove_relation(3, 1).await.unwrap(), Removed::Incoming);
    assert_eq!(b.remove_relation(1, 4).await.unwrap(), Removed::Outgoing);

    // Blocking ends what there was and refuses requests either way.
    assert_eq!(b.block(4, 3, 7).await.unwrap(), Some(Removed::Friend), "says what it ended");
    assert!(!b.are_friends(3, 4).await.unwrap());
    assert_eq!(b.block(3, 2, 7).await.unwrap(), Some(Removed::Incoming));
    assert_eq!(b.block(1, 2, 7).await.unwrap(), None);
    assert!(b.block(1, 1, 7).await.unwrap_err().is_invalid());
    assert!(b.block(1, 99, 7).await.unwrap_err().is_not_found());
    assert!(b.is_blocking(4, 3).await.unwrap() && !b.is_blocking(3, 4).await.unwrap());
    assert!(b.blocked_either(3, 4).await.unwrap() && b.blocked_either(4, 3).await.unwrap());
    assert!(b.request_friend(3, 4, 0).await.unwrap_err().is_conflict());
    assert!(b.request_friend(4, 3, 0).await.unwrap_err().is_conflict());
    assert_eq!(b.blocks_of(4, 10).await.unwrap(), vec![Relation { user: 3, since_ms: 7 }]);
    assert!(b.unblock(4, 3).await.unwrap());
    assert!(!b.unblock(4, 3).await.unwrap());
    assert!(!b.are_friends(3, 4).await.unwrap(), "unblocking does not bring the friendship back");
    assert!(!b.blocked_either(3, 4).await.unwrap());
}

fn ban(reason: &str, by: u32, created_ms: u64, expires_ms: Option<u64>) -> Ban {
    Ban { reason: reason.into(), by, created_ms, expires_ms }
}

/// User bans, address bans of both families and the audit log they write.
pub async fn bans_and_audit(b: &dyn Backend) {
    users(b, 2).await;
    b.create_session([7; 32], 1, 0, 1000).await.unwrap();
    b.ban_user(1, ban("spam", 2, 10, Some(100))).await.unwrap();
    assert_eq!(b.user_ban(1, 50).await.unwrap().unwrap().reason, "spam");
    assert!(b.user_ban(1, 100).await.unwrap().is_none(), "expired");
    assert!(b.session([7; 32], 5).await.unwrap().is_some(), "sessions stay: authentication says banned");
    assert!(b.ban_user(42, ban("x", 2, 10, None)).await.unwrap_err().is_not_found());
    b.ban_user(2, ban("forever", 1, 11, None)).await.unwrap();
    let all = b.user_bans(10).await.unwrap();
    assert_eq!(all.iter().map(|(u, _)| *u).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(all[1].1, ban("forever", 1, 11, None));
    assert_eq!(b.user_bans(1).await.unwrap().len(), 1);
    assert!(b.user_ban(2, u64::MAX).await.unwrap().is_some(), "permanent");
    assert!(b.unban_user(1, 2, 60).await.unwrap());
    assert!(!b.unban_user(1, 2, 61).await.unwrap());
    assert!(b.user_ban(1, 50).await.unwrap().is_none());

    b.ban_net("10.1.0.0/16".parse().unwrap(), ban("abuse", 1, 20, None)).await.unwrap();
    b.ban_net("2001:db8::/32".parse().unwrap(), ban("v6", 1, 21, None)).await.unwrap();
    b.ban_net("127.0.0.9/32".parse().unwrap(), ban("one", 1, 22, None)).await.unwrap();
    b.ban_net("10.0.0.0/8".parse().unwrap(), ban("wide", 1, 23, Some(500))).await.unwrap();
    b.ban_net("10.1.2.3/24".parse().unwrap(), ban("host bits", 1, 24, None)).await.unwrap();
    let hit = async |a: &str, now: u64| b.net_ban_for(a.parse().unwrap(), now).await.unwrap().map(|b| b.ban.reason);
    assert_eq!(hit("10.1.200.3", 0).await.as_deref(), Some("wide"), "the first range in order that is in force");
    assert_eq!(hit("10.1.200.3", 500).await.as_deref(), Some("abuse"), "the wider one has expired");
    assert_eq!(hit("10.2.0.1", 600).await, None);
    assert_eq!(hit("10.1.2.200", 600).await.as_deref(), Some("abuse"));
    assert_eq!(hit("2001:db8:1::5", 0).await.as_deref(), Some("v6"));
    assert_eq!(hit("127.0.0.9", 0).await.as_deref(), Some("one"));
    assert_eq!(hit("127.0.0.1", 0).await, None);
    assert_eq!(hit("::ffff:127.0.0.9", 0).await, None, "a v4-mapped v6 address is another family");
    let nets: Vec<String> = b.net_bans().await.unwrap().iter().map(|n| n.net.to_string()).collect();
    assert_eq!(nets, ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "127.0.0.9/32", "2001:db8::/32"], "key order");
    assert!(b.unban_net("10.1.9.9/16".parse().unwrap(), 1, 30).await.unwrap(), "host bits cleared");
    assert!(!b.unban_net("10.1.0.0/16".parse().unwrap(), 1, 31).await.unwrap());
    assert_eq!(b.net_bans().await.unwrap().len(), 4);

    // The audit log, newest first, paged by id.
    b.audit(AuditDraft { actor: 2, action: AuditAction::Kick, target: "1".into(), detail: "bye".into(), time_ms: 40 })
        .await
        .unwrap();
    let log = b.audit_log(u64::MAX, 100).await.unwrap();
    let got: Vec<(AuditAction, u32, &str, &str, u64)> =
        log.iter().map(|e| (e.action, e.actor, e.target.as_str(), e.detail.as_str(), e.time_ms)).collect();
    assert_eq!(
        got,
        [
            (AuditAction::Kick, 2, "1", "bye", 40),
            (AuditAction::UnbanNet, 1, "10.1.0.0/16", "", 30),
            (AuditAction::BanNet, 1, "10.1.2.0/24", "host bits", 24),
            (AuditAction::BanNet, 1, "10.0.0.0/8", "wide", 23),
            (AuditAction::BanNet, 1, "127.0.0.9/32", "one", 22),
            (AuditAction::BanNet, 1, "2001:db8::/32", "v6", 21),
            (AuditAction::BanNet, 1, "10.1.0.0/16", "abuse", 20),
            (AuditAction::UnbanUser, 2, "1", "", 60),
            (AuditAction::BanUser, 1, "2", "forever", 11),
            (AuditAction::BanUser, 2, "1", "spam (until 100)", 10),
        ]
    );
    assert!(log.windows(2).all(|w| w[0].seq > w[1].seq), "newest first");
    let page = b.audit_log(log[3].seq, 2).await.unwrap();
    assert_eq!(page, log[4..6].to_vec(), "the page before an id");
    assert!(b.audit_log(log[9].seq, 10).await.unwrap().is_empty());
    assert!(b.audit_log(0, 10).await.unwrap().is_empty());
}

/// Rooms, room messages through ticks, history pages with hidden authors and deletions.
pub async fn rooms_and_history(b: &dyn Backend) {
    let r = b.create_room("General".into(), 1, 5).await.unwrap();
    assert_eq!((r.id, r.name.as_str(), r.created_by, r.created_ms), (1, "General", 1, 5));
    assert!(b.create_room("general".into(), 1, 0).await.unwrap_err().is_conflict());
    assert!(b.create_room("  ".into(), 1, 0).await.unwrap_err().is_invalid());
    assert!(b.create_room("x".repeat(65), 1, 0).await.unwrap_err().is_invalid());
    assert_eq!(b.create_room("  random ".into(), 2, 0).await.unwrap().name, "random", "trimmed");
    assert_eq!(b.room_by_name("GENERAL".into()).await.unwrap().unwrap(), r);
    assert!(b.room_by_name("nope".into()).await.unwrap().is_none());
    assert_eq!(b.room(1).await.unwrap().unwrap(), r);
    assert!(b.room(3).await.unwrap().is_none());
    assert_eq!(b.room_count().await.unwrap(), 2);
    assert_eq!(b.rooms(0, 10).await.unwrap().len(), 2);
    assert_eq!(b.rooms(1, 10).await.unwrap()[0].name, "random");
    assert_eq!(b.rooms(0, 1).await.unwrap().len(), 1);

    let messages: Vec<Message> = (1..=10).map(|i| msg(i, (i % 2) as u32 + 1, &format!("m{i}"))).collect();
    b.commit_tick(TickWrite { messages: vec![(7, messages.clone())], now_ms: 100, ..TickWrite::default() })
        .await
        .unwrap();
    assert_eq!(b.room_last_seq(7).await.unwrap(), 10);
    assert_eq!(b.room_last_seq(8).await.unwrap(), 0);
    assert_eq!(b.room_message(7, 3).await.unwrap().unwrap(), messages[2]);
    assert!(b.room_message(7, 11).await.unwrap().is_none());
    assert_eq!(seqs(&b.room_history(7, u64::MAX, 3, none()).await.unwrap()), [8, 9, 10]);
    assert_eq!(seqs(&b.room_history(7, 8, 3, none()).await.unwrap()), [5, 6, 7]);
    assert_eq!(seqs(&b.room_history(7, 3, 10, none()).await.unwrap()), [1, 2]);
    assert!(b.room_history(7, 1, 10, none()).await.unwrap().is_empty());
    assert!(b.room_history(7, 0, 10, none()).await.unwrap().is_empty());

    let deletes = vec![
        RoomDelete { room: 7, seq: 10, by_admin: false },
        RoomDelete { room: 7, seq: 4, by_admin: true },
        RoomDelete { room: 7, seq: 99, by_admin: true },
    ];
    b.commit_tick(TickWrite { deletes, now_ms: 200, ..TickWrite::default() }).await.unwrap();
    let page = b.room_history(7, u64::MAX, 3, hide(&[2])).await.unwrap();
    assert_eq!(seqs(&page), [2, 6, 8], "odd seqs (author 2) hidden, 10 and 4 deleted");
    let gone = b.room_message(7, 10).await.unwrap().unwrap();
    assert!(gone.deleted && gone.text.is_empty());
    assert_eq!((gone.author, gone.time_ms), (1, 100));
    let log = b.audit_log(u64::MAX, 10).await.unwrap();
    assert_eq!(log.len(), 1, "only the administrator's deletion of a message that existed is audited");
    let e = &log[0];
    assert_eq!(
        (e.actor, e.action, e.target.as_str(), e.detail.as_str(), e.time_ms),
        (0, AuditAction::DeleteMessage, "room 7 seq 4", "author 1", 200)
    );

    // A tick posts and deletes in order: a message posted and deleted in one tick is gone.
    b.commit_tick(TickWrite {
        messages: vec![(7, vec![msg(11, 3, "oops")]), (8, vec![msg(1, 3, "other room")])],
        deletes: vec![RoomDelete { room: 7, seq: 11, by_admin: false }],
        now_ms: 300,
        ..TickWrite::default()
    })
    .await
    .unwrap();
    assert!(b.room_message(7, 11).await.unwrap().unwrap().deleted);
    assert_eq!(b.room_last_seq(8).await.unwrap(), 1);
}

/// A history page examines at most `scan_max` messages (the backend's configured bound).
pub async fn history_scan_is_bounded(b: &dyn Backend, scan_max: usize) {
    let n = scan_max as u64 + 5;
    let mut messages: Vec<Message> = (1..=n).map(|i| msg(i, 2, "hidden")).collect();
    messages[0].author = 1;
    b.commit_tick(TickWrite { messages: vec![(1, messages)], ..TickWrite::default() }).await.unwrap();
    assert!(b.room_history(1, u64::MAX, 10, hide(&[2])).await.unwrap().is_empty(), "message 1 is beyond the scan");
    assert_eq!(seqs(&b.room_history(1, 6, 10, hide(&[2])).await.unwrap()), [1]);
}

/// Direct messages: sequences per pair, conversations most recent first, deletion, text checks.
pub async fn direct_messages(b: &dyn Backend) {
    users(b, 3).await;
    let m1 = b.append_direct(1, 2, 100, "hi".into()).await.unwrap();
    let m2 = b.append_direct(2, 1, 200, "yo".into()).await.unwrap();
    let m3 = b.append_direct(1, 3, 300, "hey".into()).await.unwrap();
    assert_eq!((m1.seq, m2.seq, m3.seq), (1, 2, 1));
    assert_eq!((m2.author, m2.time_ms, m2.text.as_str(), m2.deleted), (2, 200, "yo", false));
    assert_eq!(b.direct_last_seq(2, 1).await.unwrap(), 2);
    assert_eq!(b.direct_last_seq(2, 3).await.unwrap(), 0);
    assert_eq!(b.direct_message(2, 1, 2).await.unwrap().unwrap(), m2);
    assert!(b.direct_message(1, 2, 3).await.unwrap().is_none());
    assert_eq!(seqs(&b.direct_history(2, 1, u64::MAX, 10, none()).await.unwrap()), [1, 2]);
    assert_eq!(seqs(&b.direct_history(2, 1, u64::MAX, 10, hide(&[2])).await.unwrap()), [1]);
    assert_eq!(seqs(&b.direct_history(1, 2, 2, 10, none()).await.unwrap()), [1]);
    let convs = b.conversations(1, 10).await.unwrap();
    assert_eq!(convs.iter().map(|c| (c.peer, c.last_seq, c.last_ms)).collect::<Vec<_>>(), [(3, 1, 300), (2, 2, 200)]);
    assert_eq!(b.conversations(2, 10).await.unwrap().iter().map(|c| c.peer).collect::<Vec<_>>(), [1]);
    assert_eq!(b.conversations(1, 1).await.unwrap().len(), 1);
    let deleted = b.delete_direct(2, 1, 1).await.unwrap();
    assert_eq!(deleted, m1, "returns the message as it was");
    assert!(b.direct_message(1, 2, 1).await.unwrap().unwrap().deleted);
    assert_eq!(seqs(&b.direct_history(1, 2, u64::MAX, 10, none()).await.unwrap()), [2]);
    assert!(b.delete_direct(1, 2, 9).await.unwrap_err().is_not_found());
    assert!(b.append_direct(1, 2, 0, " ".into()).await.unwrap_err().is_invalid());
    assert!(b.append_direct(1, 2, 0, "x".repeat(2001)).await.unwrap_err().is_invalid());
    assert_eq!(b.direct_last_seq(1, 2).await.unwrap(), 2, "a refused message takes no sequence");
}

/// Text with control characters: a NUL (which PostgreSQL's text cannot hold) or an escape in a
/// message or a room name is refused as invalid, alike on every backend; tab and line breaks
/// are kept; free text the server records (ban reasons, audit details) has them replaced.
pub async fn control_characters(b: &dyn Backend) {
    users(b, 2).await;
    for bad in ["a\0b", "\0", "bell\u{7}", "esc\u{1b}[31m"] {
        assert!(b.append_direct(1, 2, 0, bad.into()).await.unwrap_err().is_invalid(), "{bad:?}");
        assert!(b.create_room(bad.into(), 1, 0).await.unwrap_err().is_invalid(), "{bad:?}");
    }
    let kept = b.append_direct(1, 2, 0, "two\nlines\tand a tab\r\n".into()).await.unwrap();
    assert_eq!(kept.text, "two\nlines\tand a tab\r\n");
    let ban = Ban { reason: "spam\0".into(), by: 0, created_ms: 1, expires_ms: None };
    b.ban_user(2, ban).await.unwrap();
    assert_eq!(b.user_ban(2, 2).await.unwrap().unwrap().reason, "spam\u{fffd}");
    let entry =
        AuditDraft { actor: 0, action: AuditAction::Kick, target: "2\0".into(), detail: "x\u{1b}y".into(), time_ms: 3 };
    b.audit(entry).await.unwrap();
    let last = b.audit_log(u64::MAX, 1).await.unwrap().remove(0);
    assert_eq!((last.target.as_str(), last.detail.as_str()), ("2\u{fffd}", "x\u{fffd}y"));
}

/// The canvas: geometry, journal reads, inspector and rollback queries, tile snapshots,
/// recovery and pruning.
pub async fn canvas_journal(b: &dyn Backend) {
    let g = Geometry::new(32, 16, 4, 16).unwrap(); // two tiles
    assert!(b.canvas_geometry().await.unwrap().is_none());
    b.init_canvas(g).await.unwrap();
    b.init_canvas(g).await.unwrap();
    assert!(b.init_canvas(Geometry::new(64, 16, 4, 16).unwrap()).await.unwrap_err().is_conflict());
    assert_eq!(b.canvas_geometry().await.unwrap(), Some(g));
    assert_eq!(b.last_journal_seq().await.unwrap(), 0);
    assert_eq!(b.recover_canvas(g).await.unwrap().last_seq, 0);

    tick(b, vec![rec(1, 0, 0, 1, 1, 10), rec(2, 20, 0, 2, 1, 10), rec(3, 0, 0, 3, 2, 11), rec(4, 21, 1, 4, 2, 12)])
        .await;
    assert_eq!(b.last_journal_seq().await.unwrap(), 4);
    assert_eq!(b.journal_entry(3).await.unwrap(), Some(rec(3, 0, 0, 3, 2, 11)));
    assert!(b.journal_entry(5).await.unwrap().is_none());
    assert_eq!(b.journal_after(1, 2).await.unwrap(), [rec(2, 20, 0, 2, 1, 10), rec(3, 0, 0, 3, 2, 11)]);
    assert!(b.journal_after(4, 10).await.unwrap().is_empty());
    assert!(
        b.commit_tick(TickWrite { pixels: vec![rec(6, 0, 0, 1, 1, 1), rec(5, 0, 0, 1, 1, 1)], ..TickWrite::default() })
            .await
            .unwrap_err()
            .is_invalid(),
        "sequences must ascend"
    );

    // Snapshot tile 0 at seq 3 (pixel 0 = 3); tile 1 never snapshotted.
    let mut t0 = vec![0u8; g.tile_bytes()];
    set_pixel(&mut t0, 4, 0, 3);
    b.save_tiles(vec![TileSnapshot { tile: 0, seq: 3, data: t0.clone() }]).await.unwrap();
    assert_eq!(b.tile_snapshot_seqs().await.unwrap(), [(0, 3)]);
    assert_eq!(b.tile_snapshots().await.unwrap(), [TileSnapshot { tile: 0, seq: 3, data: t0 }]);
    tick(b, vec![rec(5, 1, 0, 5, 3, 13)]).await;
    let c = b.recover_canvas(g).await.unwrap();
    assert_eq!(c.tile_seqs, vec![5, 4]);
    assert_eq!(c.last_seq, 5);
    assert_eq!(c.replayed, 3, "seq 5 on tile 0; 2 and 4 on tile 1");
    assert_eq!(get_pixel(&c.tiles[0], 4, 0), 3);
    assert_eq!(get_pixel(&c.tiles[0], 4, 1), 5);
    assert_eq!(get_pixel(&c.tiles[1], 4, 4), 2);
    assert_eq!(get_pixel(&c.tiles[1], 4, 16 + 5), 4);

    // Inspector and rollback queries.
    tick(b, vec![rec(6, 0, 0, 6, 1, 20)]).await;
    let h = b.pixel_history(0, 0, u64::MAX, 10).await.unwrap();
    assert_eq!(h.iter().map(|r| r.seq).collect::<Vec<_>>(), [6, 3, 1]);
    assert_eq!(b.pixel_history(0, 0, 6, 1).await.unwrap()[0].user, 2, "the update before seq 6");
    assert!(b.pixel_history(0, 0, 1, 10).await.unwrap().is_empty());
    assert!(b.pixel_history(9, 9, u64::MAX, 10).await.unwrap().is_empty());
    let mine = b.user_pixels(1, 10, 21, 10).await.unwrap();
    assert_eq!(mine.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 6]);
    assert_eq!(b.user_pixels(1, 10, 20, 10).await.unwrap().len(), 2, "to_ms is exclusive");
    assert_eq!(b.user_pixels(1, 10, 21, 1).await.unwrap().len(), 1);
    assert!(b.user_pixels(1, 30, 50, 10).await.unwrap().is_empty());
    assert_eq!(b.user_pixels(2, 0, u64::MAX, 10).await.unwrap().len(), 2);
}

/// Pruning drops only what every tile's own snapshot covers, oldest first, up to `max`.
/// `settle` makes what is committed visible to pruning (fjall prunes only blocks already in
/// its pixel index).
pub async fn prune_journal(b: &dyn Backend, settle: &(dyn Fn() + Sync)) {
    let g = Geometry::new(32, 16, 4, 16).unwrap(); // tiles 0 and 1
    b.init_canvas(g).await.unwrap();
    tick(b, vec![rec(1, 3, 3, 7, 1, 10)]).await; // tile 0
    tick(b, vec![rec(2, 20, 0, 5, 2, 20)]).await; // tile 1
    for seq in 3..=5 {
        tick(b, vec![rec(seq, 1, 1, seq as u8, 1, 20 + seq)]).await; // tile 0
    }
    settle();
    assert_eq!(b.prune_journal(g, u64::MAX, 100).await.unwrap(), 0, "no snapshot covers anything yet");
    let c = b.recover_canvas(g).await.unwrap();
    b.save_tiles(vec![TileSnapshot { tile: 1, seq: 2, data: c.tiles[1].clone() }]).await.unwrap();
    assert_eq!(b.prune_journal(g, u64::MAX, 100).await.unwrap(), 0, "tile 0's only records are not covered");
    b.save_tiles(vec![TileSnapshot { tile: 0, seq: 5, data: c.tiles[0].clone() }]).await.unwrap();
    assert_eq!(b.prune_journal(g, 15, 100).await.unwrap(), 1, "only what is older than before_ms");
    assert_eq!(b.journal_after(0, 10).await.unwrap().first().map(|r| r.seq), Some(2));
    assert_eq!(b.prune_journal(g, u64::MAX, 2).await.unwrap(), 2, "at most max");
    assert_eq!(b.prune_journal(g, u64::MAX, 100).await.unwrap(), 2);
    assert!(b.journal_after(0, 10).await.unwrap().is_empty());
    assert_eq!(b.last_journal_seq().await.unwrap(), 0);
    assert!(b.pixel_history(1, 1, u64::MAX, 10).await.unwrap().is_empty(), "the inspector sees what is kept");
    let after = b.recover_canvas(g).await.unwrap();
    assert_eq!(after.tiles, c.tiles, "nothing lost");
    assert_eq!(get_pixel(&after.tiles[0], 4, 3 * 16 + 3), 7);
    assert_eq!(after.replayed, 0);
}

/// A tick writes its pixels, messages and deletions together; a refused tick writes none.
pub async fn commit_tick_is_all_or_nothing(b: &dyn Backend) {
    let refused = TickWrite {
        pixels: vec![rec(2, 0, 0, 1, 1, 1), rec(2, 1, 0, 1, 1, 1)],
        messages: vec![(1, vec![msg(1, 1, "never")])],
        ..TickWrite::default()
    };
    assert!(b.commit_tick(refused).await.unwrap_err().is_invalid());
    assert_eq!(b.last_journal_seq().await.unwrap(), 0);
    assert_eq!(b.room_last_seq(1).await.unwrap(), 0);
    assert!(TickWrite::default().is_empty());
    b.commit_tick(TickWrite::default()).await.unwrap();
    let pixels: Vec<PixelRecord> = (1..=5000).map(|s| rec(s, (s % 64) as u16, (s / 64) as u16, 1, 1, 7)).collect();
    b.commit_tick(TickWrite { pixels, messages: vec![(1, vec![msg(1, 1, "a")])], ..TickWrite::default() })
        .await
        .unwrap();
    assert_eq!(b.last_journal_seq().await.unwrap(), 5000);
    assert_eq!(b.journal_after(4990, 100).await.unwrap().len(), 10);
    assert_eq!(b.room_last_seq(1).await.unwrap(), 1);
}

/// The backend's own queries.
pub async fn backend_state(b: &dyn Backend) {
    b.flush().await.unwrap();
    assert!(!b.is_poisoned());
    assert!(b.is_ready());
    for (name, help, _) in b.gauges() {
        assert!(!name.is_empty() && !help.is_empty());
    }
}
