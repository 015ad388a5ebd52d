//! Cluster mode at a room's home shard: committed messages from every node, put back in
//! sequence order before members see them. Announcements between nodes are at-most-once, so
//! a gap that stays open longer than `gap_hold_ms` is filled from the store, and every
//! `room_check_ms` the home asks the store for the newest sequence of its loaded rooms (a message whose announcement was lost, with nothing after it, is found so).
//!
//! Presence too: each node announces its members of each room (after a change and every
//! `presence_ms`); a node not heard from for three rounds is gone, and its members with it.
//!
//! The canvas needs no such step here: its single global order is kept by the node's feed
//! (the gateway's), which hands each home shard its tiles' updates already in order.

use std::sync::Arc;

use pixelparty_storage::backend::MAX_RANGE;

use pixelparty_protocol::PresenceKind;

use bytes::Bytes;
use pixelparty_protocol::ServerFrame;
use pixelparty_protocol::server::DirectMessage;

use crate::cluster::{Gap, Sequencer};
use crate::cmd::history::author_names;
use crate::msg::{FedPost, ShardMsg};
use crate::rooms::{Changes, presence_change};
use crate::shard::Shard;

/// Rooms one sequence check asks about (the rest wait for the next round).
const ROOMS_PER_CHECK: usize = 64;

/// Most deletions a room keeps for messages not released yet.
const MAX_DELETED_AHEAD: usize = 4096;

/// Conversations one direct home keeps in order; beyond, the least recently active goes
/// (its next message starts it again).
const MAX_CONVERSATIONS: usize = 65_536;

/// Direct messages a conversation holds back behind a gap.
const MAX_HELD_DIRECTS: usize = 1024;

/// A conversation is checked against the store while it was active this recently.
const ACTIVE_MS: u64 = 60_000;

/// What a shard keeps in order in cluster mode, by key.
#[derive(Debug, Clone, Copy)]
enum Ordered {
    Room(u32),
    Conversation((u32, u32)),
}

/// A sequencer told what the store has, whatever it holds.
trait Expect {
    fn expect(&mut self, last: u64, now_ms: u64);
}

impl<T> Expect for Sequencer<T> {
    fn expect(&mut self, last: u64, now_ms: u64) {
        Sequencer::expect(self, last, now_ms);
    }
}

/// Messages of a conversation's start this far back are looked at (see
/// `Shard::start_conversation`).
const START_LOOKBACK: u64 = 64;

/// A message this recent may still be on its way from its node.
const RECENT_MS: u64 = 10_000;

/// A direct message waiting for its conversation's order: `(seq, from, to, frame)`.
pub(crate) type Pending = (u64, u32, u32, Bytes);

/// A conversation at its direct home (cluster mode): its messages from every node back in
/// order (an empty frame: deleted, taken but not shown).
#[derive(Debug)]
pub(crate) struct ConvOrder {
    order: Sequencer<(u32, u32, Bytes)>,
    asking: bool,
    active_ms: u64,
    /// Deletions of messages not released yet: never shown.
    deleted_ahead: std::collections::BTreeSet<u64>,
}

impl Shard {
    /// Cluster mode: committed messages of a room homed here, in any order. A room not
    /// loaded here has no member on this node: nothing to do (a later load reads the store).
    pub(crate) fn on_feed_room(&mut self, room: u32, posts: Vec<FedPost>, now_ms: u64) {
        let Some(home) = self.rooms.get_mut(&room) else { return };
        let mut ready = Vec::new();
        for p in posts {
            home.order.offer(p.seq, p, now_ms, &mut ready);
        }
        home.published_seq = home.order.applied();
        home.last_seq = home.last_seq.max(home.published_seq);
        let mut shown = Vec::with_capacity(ready.len());
        for (seq, p) in ready {
            // A deletion that came before its message: the message is never shown.
            if !home.deleted_ahead.remove(&seq) && !p.deleted {
                shown.push(p);
            }
        }
        for p in shown {
            self.tell_post(room, p.seq, p.author, &p.name, p.time_ms, &p.text);
        }
    }

    /// Cluster mode: a message of a room homed here was deleted (on any node). Members here
    /// get its tombstone if they were shown it; one not released yet is never shown.
    pub(crate) fn on_feed_room_delete(&mut self, room: u32, seq: u64) {
        let Some(home) = self.rooms.get_mut(&room) else { return };
        if seq <= home.order.applied() {
            return self.tell_deleted(room, seq);
        }
        if home.deleted_ahead.len() >= MAX_DELETED_AHEAD {
            // Bounded: the newest goes (the furthest from release; its message may then show,
            // the history has it deleted).
            home.deleted_ahead.pop_last();
        }
        home.deleted_ahead.insert(seq);
    }

    /// Cluster mode: tells the other nodes who is in `room` here (after a change, and every
    /// `presence_ms`).
    pub(crate) fn announce_presence(&self, room: u32) {
        if let (Some(link), Some(home)) = (&self.config().cluster, self.rooms.get(&room)) {
            link.announce_presence(room, home.local_members());
        }
    }

    /// Cluster mode: another node's members of a room homed here. Local members hear of
    /// who appeared and who left (present nowhere else any more).
    pub(crate) fn on_feed_presence(&mut self, room: u32, node: u64, users: Vec<(u32, Arc<str>)>, now_ms: u64) {
        let Some(home) = self.rooms.get_mut(&room) else { return };
        let changes = home.set_remote(node, users, now_ms);
        self.tell_presence(room, changes);
    }

    fn tell_presence(&mut self, room: u32, (appeared, vanished): (Changes, Changes)) {
        if appeared.is_empty() && vanished.is_empty() {
            return;
        }
        let shards: Vec<usize> = self.rooms.get(&room).map(|r| r.member_shards().collect()).unwrap_or_default();
        let changes =
            appeared.iter().map(|c| (PresenceKind::Joined, c)).chain(vanished.iter().map(|c| (PresenceKind::Left, c)));
        for (kind, (user, name)) in changes {
            let frame = presence_change(room, kind, *user, name);
            for &s in &shards {
                self.send(s, ShardMsg::RoomFrame { room, author: 0, frame: frame.clone() });
            }
        }
    }

    /// Cluster mode: a direct message (this node's or another's) at its conversation's home,
    /// released in the conversation's order. A conversation not ordered here yet starts once
    /// the store says which of its messages are recent enough to be still on their way.
    pub(crate) fn on_feed_direct(&mut self, from: u32, to: u32, seq: u64, frame: Bytes, now_ms: u64) {
        let key = (from.min(to), from.max(to));
        let Some(conv) = self.conv_orders.get_mut(&key) else {
            return self.start_conversation(key, (seq, from, to, frame));
        };
        conv.active_ms = now_ms;
        let mut ready = Vec::new();
        conv.order.offer(seq, (from, to, frame), now_ms, &mut ready);
        let mut shown = Vec::with_capacity(ready.len());
        for (seq, (from, to, frame)) in ready {
            // A deletion that came before its message: the message is never shown.
            if !conv.deleted_ahead.remove(&seq) && !frame.is_empty() {
                shown.push((from, to, frame));
            }
        }
        for (from, to, frame) in shown {
            self.broadcast(|| ShardMsg::Direct { from, to, frame: frame.clone() });
        }
    }

    /// Holds a conversation's first message while the store is asked for its messages of
    /// the last [`RECENT_MS`] before it: the order starts at the oldest of those (they may
    /// still be on their way from their node, and are waited for or read), else at it.
    fn start_conversation(&mut self, key: (u32, u32), first: Pending) {
        if let Some(pending) = self.conv_starting.get_mut(&key) {
            if pending.len() < MAX_HELD_DIRECTS {
                pending.push(first);
            }
            return;
        }
        let (lo, hi, seq) = (key.0, key.1, first.0);
        self.conv_starting.insert(key, vec![first]);
        let low = seq.saturating_sub(START_LOOKBACK).max(1);
        self.ask(
            move |b| b.direct_range(lo, hi, low, seq),
            move |s: &mut Shard, found, now_ms| {
                let pending = s.conv_starting.remove(&key).unwrap_or_default();
                let Some(first) = pending.iter().map(|p| p.0).min() else { return };
                let recent = match found {
                    Ok(page) => {
                        page.iter().filter(|m| m.time_ms.saturating_add(RECENT_MS) >= now_ms).map(|m| m.seq).min()
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, lo, hi, "reading a conversation's recent messages failed");
                        None
                    }
                };
                let start = recent.map_or(first, |r| r.min(first));
                if s.conv_orders.len() >= MAX_CONVERSATIONS {
                    let oldest = s.conv_orders.iter().min_by_key(|(_, c)| c.active_ms).map(|(k, _)| *k);
                    if let Some(oldest) = oldest {
                        s.conv_orders.remove(&oldest);
                    }
                }
                s.conv_orders.insert(
                    key,
                    ConvOrder {
                        order: Sequencer::with_bound(start.saturating_sub(1), MAX_HELD_DIRECTS),
                        asking: false,
                        active_ms: now_ms,
                        deleted_ahead: std::collections::BTreeSet::new(),
                    },
                );
                for (seq, from, to, frame) in pending {
                    s.on_feed_direct(from, to, seq, frame, now_ms);
                }
            },
        );
    }

    /// Cluster mode: a direct message was deleted (on any node). Its sessions here get the
    /// tombstone if they were shown it; one not released yet is never shown.
    pub(crate) fn on_feed_direct_delete(&mut self, a: u32, b: u32, seq: u64) {
        let key = (a.min(b), a.max(b));
        if let Some(pending) = self.conv_starting.get_mut(&key) {
            if let Some(p) = pending.iter_mut().find(|p| p.0 == seq) {
                p.3 = Bytes::new();
                return;
            }
        } else if let Some(conv) = self.conv_orders.get_mut(&key)
            && seq > conv.order.applied()
        {
            if conv.deleted_ahead.len() >= MAX_DELETED_AHEAD {
                conv.deleted_ahead.pop_last();
            }
            conv.deleted_ahead.insert(seq);
            return;
        }
        self.broadcast(|| ShardMsg::DirectDeleted { a, b, seq });
    }

    /// Reads a conversation's missing messages from the store (deleted ones take their place,
    /// unshown).
    fn fill_direct_gap(&mut self, key: (u32, u32), gap: Gap) {
        let to = gap.to.min(gap.from.saturating_add(MAX_RANGE));
        if let Some(c) = self.conv_orders.get_mut(&key) {
            c.asking = true;
        }
        let (lo, hi) = key;
        self.ask(
            move |b| {
                let b = b.clone();
                Box::pin(async move {
                    let page = b.direct_range(lo, hi, gap.from, to).await?;
                    let names = author_names(&b, &page).await?;
                    Ok((page, names))
                })
            },
            move |s: &mut Shard, found, now_ms| {
                let Some(c) = s.conv_orders.get_mut(&key) else { return };
                c.asking = false;
                let (page, names) = match found {
                    Ok(found) => found,
                    Err(e) => {
                        c.order.delay(now_ms);
                        return tracing::warn!(error = %e, lo, hi, "filling a conversation's gap failed");
                    }
                };
                let present: std::collections::HashSet<u64> = page.iter().map(|m| m.seq).collect();
                for m in page {
                    let other = if m.author == lo { hi } else { lo };
                    let frame = if m.deleted {
                        Bytes::new()
                    } else {
                        let name = names.get(&m.author).map_or("", String::as_str);
                        crate::shard::encode(&ServerFrame::DirectMessage(DirectMessage {
                            from: m.author,
                            to: other,
                            seq: m.seq,
                            time_ms: m.time_ms,
                            from_name: name,
                            text: &m.text,
                        }))
                    };
                    s.on_feed_direct(m.author, other, m.seq, frame, now_ms);
                }
                for seq in (gap.from..to).filter(|q| !present.contains(q)) {
                    s.on_feed_direct(lo, hi, seq, Bytes::new(), now_ms);
                }
            },
        );
    }

    /// Cluster mode: fills conversations' gaps that stayed open too long, and (with the rooms'
    /// check) asks the store how far the recently active ones really are.
    fn cluster_directs_tick(&mut self, now_ms: u64, scan: bool, check: bool) {
        let hold = self.config().gap_hold_ms;
        if scan {
            let due: Vec<((u32, u32), Gap)> = self
                .conv_orders
                .iter()
                .filter(|(_, c)| !c.asking)
                .filter_map(|(k, c)| {
                    c.order.gap().filter(|g| now_ms >= g.since_ms.saturating_add(hold)).map(|g| (*k, g))
                })
                .collect();
            for (key, gap) in due {
                self.fill_direct_gap(key, gap);
            }
        }
        if !check {
            return;
        }
        let mut active: Vec<(u32, u32)> = self
            .conv_orders
            .iter()
            .filter(|(_, c)| !c.asking && now_ms.saturating_sub(c.active_ms) <= ACTIVE_MS)
            .map(|(k, _)| *k)
            .collect();
        // Round robin, as the rooms.
        active.sort_unstable();
        let start = active.partition_point(|&k| k <= self.last_conv_checked);
        active.rotate_left(start);
        active.truncate(ROOMS_PER_CHECK);
        if let Some(&last) = active.last() {
            self.last_conv_checked = last;
        }
        if active.is_empty() {
            return;
        }
        self.check_heads(active.into_iter().map(Ordered::Conversation).collect());
    }

    /// Cluster mode, every tick: fills the gaps that stayed open too long, and now and then
    /// asks the store how far each room with local members really is.
    pub(crate) fn cluster_rooms_tick(&mut self, now_ms: u64) {
        let hold = self.config().gap_hold_ms;
        // Every room and conversation is looked at twice per hold, not every tick.
        let scan = now_ms >= self.next_gap_scan_ms;
        if scan {
            self.next_gap_scan_ms = now_ms + (hold / 2).clamp(5, 1000);
            let due: Vec<(u32, Gap)> = self
                .rooms
                .values()
                .filter(|r| !r.asking)
                .filter_map(|r| r.order.gap().filter(|g| now_ms >= g.since_ms.saturating_add(hold)).map(|g| (r.id, g)))
                .collect();
            for (room, gap) in due {
                self.fill_room_gap(room, gap);
            }
        }
        let check = now_ms >= self.next_room_check_ms;
        if check {
            self.next_room_check_ms = now_ms + self.config().room_check_ms;
            self.check_room_seqs(now_ms);
        }
        self.cluster_directs_tick(now_ms, scan, check);
        if now_ms >= self.next_presence_ms {
            let every = self.config().presence_ms;
            self.next_presence_ms = now_ms + every;
            let rooms: Vec<u32> = self.rooms.values().filter(|r| r.has_members()).map(|r| r.id).collect();
            for &room in &rooms {
                self.announce_presence(room);
            }
            // A node not heard from for three rounds is gone, and its members with it.
            let before = now_ms.saturating_sub(3 * every);
            let all: Vec<u32> = self.rooms.keys().copied().collect();
            for room in all {
                if let Some(home) = self.rooms.get_mut(&room) {
                    let vanished = home.expire_remote(before);
                    self.tell_presence(room, (Vec::new(), vanished));
                }
            }
        }
    }

    /// Reads the missing messages from the store (deleted ones too: they take their place,
    /// unshown). Every sequence below one that was committed is committed too (the store
    /// assigns them under a lock held to commit), so the range has them all; one it lacked
    /// anyway would take its place as deleted rather than stop the room.
    fn fill_room_gap(&mut self, room: u32, gap: Gap) {
        let to = gap.to.min(gap.from.saturating_add(MAX_RANGE));
        if let Some(home) = self.rooms.get_mut(&room) {
            home.asking = true;
        }
        self.ask(
            move |b| {
                let b = b.clone();
                Box::pin(async move {
                    let page = b.room_range(room, gap.from, to).await?;
                    let names = author_names(&b, &page).await?;
                    Ok((page, names))
                })
            },
            move |s: &mut Shard, found, now_ms| {
                let Some(home) = s.rooms.get_mut(&room) else { return };
                home.asking = false;
                let (page, names) = match found {
                    Ok(found) => found,
                    Err(e) => {
                        home.order.delay(now_ms);
                        tracing::warn!(error = %e, room, "filling a room's gap failed; trying again after the hold");
                        return;
                    }
                };
                let name_of = |id: u32| -> Arc<str> { Arc::from(names.get(&id).map_or("", String::as_str)) };
                let mut posts: Vec<FedPost> = page
                    .into_iter()
                    .filter(|m| (gap.from..to).contains(&m.seq))
                    .map(|m| FedPost::of(m.seq, m, name_of))
                    .collect();
                let present: std::collections::HashSet<u64> = posts.iter().map(|p| p.seq).collect();
                for seq in (gap.from..to).filter(|q| !present.contains(q)) {
                    posts.push(FedPost {
                        seq,
                        author: 0,
                        name: Arc::from(""),
                        time_ms: 0,
                        text: "".into(),
                        deleted: true,
                    });
                }
                s.on_feed_room(room, posts, now_ms);
            },
        );
    }

    /// Asks the store for the newest sequence of (up to [`ROOMS_PER_CHECK`]) loaded rooms,
    /// round robin.
    fn check_room_seqs(&mut self, _now_ms: u64) {
        // Every loaded room, with members or not: its next joiner must find it current.
        let mut rooms: Vec<u32> = self.rooms.values().filter(|r| !r.asking).map(|r| r.id).collect();
        rooms.sort_unstable();
        let start = rooms.partition_point(|&r| r <= self.last_room_checked);
        rooms.rotate_left(start);
        rooms.truncate(ROOMS_PER_CHECK);
        let Some(&last) = rooms.last() else { return };
        self.last_room_checked = last;
        self.check_heads(rooms.into_iter().map(Ordered::Room).collect());
    }

    /// The sequencer of a room or a conversation homed here, and its asking flag.
    fn ordered(&mut self, key: Ordered) -> Option<(&mut dyn Expect, &mut bool)> {
        match key {
            Ordered::Room(room) => self.rooms.get_mut(&room).map(|h| (&mut h.order as &mut dyn Expect, &mut h.asking)),
            Ordered::Conversation(k) => {
                self.conv_orders.get_mut(&k).map(|c| (&mut c.order as &mut dyn Expect, &mut c.asking))
            }
        }
    }

    /// Asks the store for the newest sequence of each of `keys` (rooms, conversations): any
    /// beyond what was released opens a gap (a lost tail).
    fn check_heads(&mut self, keys: Vec<Ordered>) {
        if keys.is_empty() {
            return;
        }
        for &key in &keys {
            if let Some((_, asking)) = self.ordered(key) {
                *asking = true;
            }
        }
        let asked = keys.clone();
        self.ask(
            move |b| {
                let b = b.clone();
                Box::pin(async move {
                    let mut out = Vec::with_capacity(keys.len());
                    for key in keys {
                        let last = match key {
                            Ordered::Room(room) => b.room_last_seq(room).await?,
                            Ordered::Conversation((lo, hi)) => b.direct_last_seq(lo, hi).await?,
                        };
                        out.push((key, last));
                    }
                    Ok(out)
                })
            },
            move |s: &mut Shard, found, now_ms| {
                for &key in &asked {
                    if let Some((_, asking)) = s.ordered(key) {
                        *asking = false;
                    }
                }
                match found {
                    Ok(found) => {
                        for (key, last) in found {
                            if let Some((order, _)) = s.ordered(key) {
                                order.expect(last, now_ms);
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "checking sequences against the store failed"),
                }
            },
        );
    }
}
