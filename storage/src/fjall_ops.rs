//! The [`Backend`] operations of the embedded fjall backend ([`Fjall`]). A read runs when its
//! future is polled, on a blocking thread of the runtime polling it (the
//! [`Store`](crate::Store)'s, never the caller's thread); a
//! write is queued for the writer thread when the operation is called, so writes reach the
//! journal in the order they were issued, and its future resolves when the writer reports it
//! durable.

use std::net::IpAddr;

use ipnet::IpNet;
use pixelparty_protocol::Geometry;

use crate::accounts::TOKEN_HASH_LEN;
use crate::backend::{AuditDraft, Backend, Hidden, Op, TickWrite};
use crate::error::{Kind, Result, StorageError};
use crate::records::{AuditAction, AuditEntry, Ban, Conversation, Message, NetBan, PixelRecord, Relation, Role, Room};
use crate::records::{Session, User};
use crate::social::{FriendOutcome, Removed};
use crate::{Db, Fjall, RecoveredCanvas, TileSnapshot, Tx};

impl Fjall {
    fn read<T, F>(&self, f: F) -> Op<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
    {
        let store = self.clone();
        // On the runtime's blocking threads: a long scan (a rollback plan, a history page
        // past many hidden messages) must not hold a worker that completions need.
        Box::pin(async move {
            tokio::task::spawn_blocking(move || f(&store)).await.map_err(|_| StorageError::new(Kind::Closed))?
        })
    }

    fn write<T, F>(&self, f: F) -> Op<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let submitted = self.submit(f, move |r| {
            let _ = tx.send(r);
        });
        Box::pin(async move {
            submitted?;
            rx.await.map_err(|_| StorageError::new(Kind::Closed))?
        })
    }
}

fn visible(hidden: &Hidden) -> impl Fn(&Message) -> bool + '_ {
    move |m: &Message| hidden.binary_search(&m.author).is_err()
}

/// Writes one tick: pixels, room messages, then deletions (a missing message is skipped; an
/// administrator's deletion is audited). A message posted and deleted in the same tick is
/// stored deleted (the writer's reads do not see the tick's own unwritten messages).
pub(crate) fn commit_tick(tx: &mut Tx<'_>, tick: &TickWrite) -> Result<()> {
    tx.append_pixels(&tick.pixels)?;
    let mut same_tick = Vec::new();
    for (room, list) in &tick.messages {
        let mut list = list.clone();
        for m in &mut list {
            if let Some(d) = tick.deletes.iter().find(|d| d.room == *room && d.seq == m.seq) {
                same_tick.push((*d, m.author));
                m.text.clear();
                m.deleted = true;
            }
        }
        tx.append_room_messages(*room, &list)?;
    }
    for (d, author) in same_tick {
        if d.by_admin {
            let target = format!("room {} seq {}", d.room, d.seq);
            tx.audit(0, AuditAction::DeleteMessage, &target, &format!("author {author}"), tick.now_ms);
        }
    }
    for d in &tick.deletes {
        if tick.messages.iter().any(|(room, list)| *room == d.room && list.iter().any(|m| m.seq == d.seq)) {
            continue; // Done above.
        }
        match tx.delete_room_message(d.room, d.seq) {
            Ok(m) if d.by_admin => tx.audit(
                0,
                AuditAction::DeleteMessage,
                &format!("room {} seq {}", d.room, d.seq),
                &format!("author {}", m.author),
                tick.now_ms,
            ),
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Backend for Fjall {
    fn user(&self, id: u32) -> Op<Option<User>> {
        self.read(move |db| db.user(id))
    }
    fn user_by_name(&self, name: String) -> Op<Option<User>> {
        self.read(move |db| db.user_by_name(&name))
    }
    fn users(&self, after: u32, limit: usize) -> Op<Vec<User>> {
        self.read(move |db| db.users(after, limit))
    }
    fn user_count(&self) -> Op<u32> {
        self.read(Db::user_count)
    }
    fn user_names(&self, ids: Vec<u32>) -> Op<Vec<(u32, String)>> {
        self.read(move |db| {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids.into_iter().take(crate::backend::MAX_NAMES) {
                if let Some(u) = db.user(id)? {
                    out.push((id, u.name));
                }
            }
            Ok(out)
        })
    }
    fn session(&self, token_hash: [u8; TOKEN_HASH_LEN], now_ms: u64) -> Op<Option<Session>> {
        self.read(move |db| db.session(&token_hash, now_ms))
    }
    fn create_user(&self, name: String, password_hash: String, role: Role, now_ms: u64) -> Op<User> {
        self.write(move |tx| tx.create_user(&name, &password_hash, role, now_ms))
    }
    fn set_role(&self, user: u32, role: Role, actor: u32, now_ms: u64) -> Op<User> {
        self.write(move |tx| tx.set_role(user, role, actor, now_ms))
    }
    fn set_password_hash(&self, user: u32, password_hash: String) -> Op<()> {
        self.write(move |tx| tx.set_password_hash(user, &password_hash))
    }
    fn create_session(&self, token_hash: [u8; TOKEN_HASH_LEN], user: u32, now_ms: u64, ttl_ms: u64) -> Op<Session> {
        self.write(move |tx| tx.create_session(token_hash, user, now_ms, ttl_ms))
    }
    fn revoke_session(&self, token_hash: [u8; TOKEN_HASH_LEN]) -> Op<bool> {
        self.write(move |tx| tx.revoke_session(token_hash))
    }
    fn revoke_user_sessions(&self, user: u32) -> Op<usize> {
        self.write(move |tx| tx.revoke_user_sessions(user))
    }

    fn are_friends(&self, a: u32, b: u32) -> Op<bool> {
        self.read(move |db| db.are_friends(a, b))
    }
    fn friends_of(&self, user: u32, limit: usize) -> Op<Vec<Relation>> {
        self.read(move |db| db.friends_of(user, limit))
    }
    fn incoming_requests(&self, user: u32, limit: usize) -> Op<Vec<Relation>> {
        self.read(move |db| db.incoming_requests(user, limit))
    }
    fn outgoing_requests(&self, user: u32, limit: usize) -> Op<Vec<Relation>> {
        self.read(move |db| db.outgoing_requests(user, limit))
    }
    fn blocks_of(&self, user: u32, limit: usize) -> Op<Vec<Relation>> {
        self.read(move |db| db.blocks_of(user, limit))
    }
    fn is_blocking(&self, blocker: u32, blocked: u32) -> Op<bool> {
        self.read(move |db| db.is_blocking(blocker, blocked))
    }
    fn blocked_either(&self, a: u32, b: u32) -> Op<bool> {
        self.read(move |db| db.blocked_either(a, b))
    }
    fn request_friend(&self, from: u32, to: u32, now_ms: u64) -> Op<FriendOutcome> {
        self.write(move |tx| tx.request_friend(from, to, now_ms))
    }
    fn accept_friend(&self, me: u32, from: u32, now_ms: u64) -> Op<()> {
        self.write(move |tx| tx.accept_friend(me, from, now_ms))
    }
    fn remove_relation(&self, me: u32, other: u32) -> Op<Removed> {
        self.write(move |tx| tx.remove_relation(me, other))
    }
    fn block(&self, blocker: u32, blocked: u32, now_ms: u64) -> Op<Option<Removed>> {
        self.write(move |tx| tx.block(blocker, blocked, now_ms))
    }
    fn unblock(&self, blocker: u32, blocked: u32) -> Op<bool> {
        self.write(move |tx| tx.unblock(blocker, blocked))
    }

    fn user_ban(&self, user: u32, now_ms: u64) -> Op<Option<Ban>> {
        self.read(move |db| db.user_ban(user, now_ms))
    }
    fn user_bans(&self, limit: usize) -> Op<Vec<(u32, Ban)>> {
        self.read(move |db| db.user_bans(limit))
    }
    fn net_bans(&self) -> Op<Vec<NetBan>> {
        self.read(Db::net_bans)
    }
    fn net_ban_for(&self, addr: IpAddr, now_ms: u64) -> Op<Option<NetBan>> {
        self.read(move |db| db.net_ban_for(addr, now_ms))
    }
    fn audit_log(&self, before: u64, limit: usize) -> Op<Vec<AuditEntry>> {
        self.read(move |db| db.audit_log(before, limit))
    }
    fn audit(&self, e: AuditDraft) -> Op<()> {
        let e = e.plain();
        self.write(move |tx| {
            tx.audit(e.actor, e.action, &e.target, &e.detail, e.time_ms);
            Ok(())
        })
    }
    fn ban_user(&self, user: u32, ban: Ban) -> Op<()> {
        let ban = ban.plain();
        self.write(move |tx| tx.ban_user(user, &ban))
    }
    fn unban_user(&self, user: u32, actor: u32, now_ms: u64) -> Op<bool> {
        self.write(move |tx| tx.unban_user(user, actor, now_ms))
    }
    fn ban_net(&self, net: IpNet, ban: Ban) -> Op<()> {
        let ban = ban.plain();
        self.write(move |tx| tx.ban_net(net, &ban))
    }
    fn unban_net(&self, net: IpNet, actor: u32, now_ms: u64) -> Op<bool> {
        self.write(move |tx| tx.unban_net(net, actor, now_ms))
    }

    fn room(&self, id: u32) -> Op<Option<Room>> {
        self.read(move |db| db.room(id))
    }
    fn room_count(&self) -> Op<u32> {
        self.read(Db::room_count)
    }
    fn room_by_name(&self, name: String) -> Op<Option<Room>> {
        self.read(move |db| db.room_by_name(&name))
    }
    fn rooms(&self, after: u32, limit: usize) -> Op<Vec<Room>> {
        self.read(move |db| db.rooms(after, limit))
    }
    fn room_last_seq(&self, room: u32) -> Op<u64> {
        self.read(move |db| db.room_last_seq(room))
    }
    fn room_message(&self, room: u32, seq: u64) -> Op<Option<Message>> {
        self.read(move |db| db.room_message(room, seq))
    }
    fn room_history(&self, room: u32, before: u64, limit: usize, hidden: Hidden) -> Op<Vec<Message>> {
        self.read(move |db| db.room_history(room, before, limit, visible(&hidden)))
    }
    fn direct_last_seq(&self, a: u32, b: u32) -> Op<u64> {
        self.read(move |db| db.direct_last_seq(a, b))
    }
    fn direct_message(&self, a: u32, b: u32, seq: u64) -> Op<Option<Message>> {
        self.read(move |db| db.direct_message(a, b, seq))
    }
    fn direct_history(&self, a: u32, b: u32, before: u64, limit: usize, hidden: Hidden) -> Op<Vec<Message>> {
        self.read(move |db| db.direct_history(a, b, before, limit, visible(&hidden)))
    }
    fn conversations(&self, user: u32, limit: usize) -> Op<Vec<Conversation>> {
        self.read(move |db| db.conversations(user, limit))
    }
    fn create_room(&self, name: String, created_by: u32, now_ms: u64) -> Op<Room> {
        self.write(move |tx| tx.create_room(&name, created_by, now_ms))
    }
    fn append_direct(&self, from: u32, to: u32, now_ms: u64, text: String) -> Op<Message> {
        self.write(move |tx| tx.append_direct(from, to, now_ms, &text))
    }
    fn delete_direct(&self, a: u32, b: u32, seq: u64) -> Op<Message> {
        self.write(move |tx| tx.delete_direct(a, b, seq))
    }

    fn canvas_geometry(&self) -> Op<Option<Geometry>> {
        self.read(Db::canvas_geometry)
    }
    fn init_canvas(&self, geometry: Geometry) -> Op<()> {
        self.write(move |tx| tx.init_canvas(&geometry))
    }
    fn journal_entry(&self, seq: u64) -> Op<Option<PixelRecord>> {
        self.read(move |db| db.journal_entry(seq))
    }
    fn last_journal_seq(&self) -> Op<u64> {
        self.read(Db::last_journal_seq)
    }
    fn journal_after(&self, after: u64, limit: usize) -> Op<Vec<PixelRecord>> {
        self.read(move |db| db.journal_after(after, limit))
    }
    fn tile_snapshots(&self) -> Op<Vec<TileSnapshot>> {
        self.read(Db::tile_snapshots)
    }
    fn tile_snapshot_seqs(&self) -> Op<Vec<(u32, u64)>> {
        self.read(Db::tile_snapshot_seqs)
    }
    fn recover_canvas(&self, geometry: Geometry) -> Op<RecoveredCanvas> {
        self.read(move |db| db.recover_canvas(&geometry))
    }
    fn export(&self) -> Op<crate::backup::Export> {
        self.read(Db::export)
    }
    fn user_pixels(&self, user: u32, from_ms: u64, to_ms: u64, limit: usize) -> Op<Vec<PixelRecord>> {
        self.read(move |db| db.user_pixels(user, from_ms, to_ms, limit))
    }
    fn pixel_history(&self, x: u16, y: u16, before: u64, limit: usize) -> Op<Vec<PixelRecord>> {
        self.read(move |db| db.pixel_history(x, y, before, limit))
    }
    fn commit_tick(&self, tick: TickWrite) -> Op<()> {
        self.write(move |tx| commit_tick(tx, &tick))
    }
    fn save_tiles(&self, snapshots: Vec<TileSnapshot>) -> Op<()> {
        self.write(move |tx| tx.save_tiles(&snapshots))
    }
    fn prune_journal(&self, geometry: Geometry, before_ms: u64, max: usize) -> Op<usize> {
        self.write(move |tx| tx.prune_journal(&geometry, before_ms, max))
    }

    fn flush(&self) -> Op<()> {
        let store = self.clone();
        // `Fjall::flush` waits for the writer: it must not hold a runtime worker, so it runs on
        // a thread of its own (rare: orderly shutdown and tests).
        Box::pin(async move {
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::Builder::new().name("store-flush".into()).spawn(move || {
                let _ = tx.send(store.flush());
            })?;
            rx.await.map_err(|_| StorageError::new(Kind::Closed))?
        })
    }
    fn is_poisoned(&self) -> bool {
        Fjall::is_poisoned(self)
    }
    fn is_ready(&self) -> bool {
        !Fjall::is_poisoned(self)
    }
    fn gauges(&self) -> Vec<(&'static str, &'static str, u64)> {
        let (l0, tables) = self.pixel_index_tables();
        vec![
            ("storage_queue_depth", "Jobs waiting for the store's writer.", self.writer_queue_len() as u64),
            (
                "storage_index_tail",
                "Pixel updates committed but not yet in the pixel index (held in memory).",
                self.index_tail_len() as u64,
            ),
            ("storage_index_l0_tables", "Level-0 tables of the pixel index.", l0 as u64),
            ("storage_index_tables", "Tables of the pixel index.", tables as u64),
        ]
    }
}
