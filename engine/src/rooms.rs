//! Rooms at their home shard: who is in them (users, sessions per shard) and their sequences.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use pixelparty_protocol::limits::MAX_PRESENCE_ENTRIES;
use pixelparty_protocol::server::{Presence, PresenceEntry};
use pixelparty_protocol::{List, PresenceKind, ServerFrame};

use crate::cluster::Sequencer;
use crate::msg::FedPost;
use crate::routing::ShardId;

/// Most messages a room's home holds back behind a gap (cluster mode).
const MAX_HELD_POSTS: usize = 4096;

/// Most members of one room one other node's announcement is taken for (cluster mode).
const MAX_REMOTE_MEMBERS: usize = 100_000;

#[derive(Debug)]
struct Member {
    name: Arc<str>,
    sessions: u32,
}

/// A room at its home shard.
#[derive(Debug)]
pub(crate) struct HomeRoom {
    pub(crate) id: u32,
    /// Highest sequence assigned.
    pub(crate) last_seq: u64,
    /// Highest sequence made durable and fanned out.
    pub(crate) published_seq: u64,
    members: HashMap<u32, Member>,
    sessions: usize,
    per_shard: Vec<u32>,
    /// Cluster mode: the room's committed messages (from every node) back in order.
    pub(crate) order: Sequencer<FedPost>,
    /// Cluster mode: a gap fill or a sequence check is on its way from the store.
    pub(crate) asking: bool,
    /// Cluster mode: members on other nodes, as each node last announced them.
    remote: HashMap<u64, Remote>,
    /// Cluster mode: deletions of messages not released yet (held behind a gap, or not come):
    /// they are never shown.
    pub(crate) deleted_ahead: std::collections::BTreeSet<u64>,
}

/// One other node's members of a room.
#[derive(Debug)]
struct Remote {
    seen_ms: u64,
    users: HashMap<u32, Arc<str>>,
}

/// Users who appeared in or vanished from a room's presence.
pub(crate) type Changes = Vec<(u32, Arc<str>)>;

impl HomeRoom {
    pub(crate) fn new(id: u32, last_seq: u64, shards: usize) -> Self {
        Self {
            id,
            last_seq,
            published_seq: last_seq,
            members: HashMap::new(),
            sessions: 0,
            per_shard: vec![0; shards],
            order: Sequencer::with_bound(last_seq, MAX_HELD_POSTS),
            asking: false,
            remote: HashMap::new(),
            deleted_ahead: std::collections::BTreeSet::new(),
        }
    }

    pub(crate) fn sessions(&self) -> usize {
        self.sessions
    }

    pub(crate) fn is_member(&self, user: u32) -> bool {
        self.members.contains_key(&user)
    }

    /// Adds a session; returns whether it is the user's first in the room.
    pub(crate) fn join(&mut self, user: u32, name: Arc<str>, shard: ShardId) -> bool {
        self.sessions += 1;
        self.per_shard[shard] += 1;
        let m = self.members.entry(user).or_insert(Member { name, sessions: 0 });
        m.sessions += 1;
        m.sessions == 1
    }

    /// Removes a session; returns the user's name if it was their last in the room.
    pub(crate) fn leave(&mut self, user: u32, shard: ShardId) -> Option<Arc<str>> {
        let m = self.members.get_mut(&user)?;
        if self.per_shard[shard] == 0 {
            return None;
        }
        self.per_shard[shard] -= 1;
        self.sessions -= 1;
        m.sessions -= 1;
        if m.sessions == 0 {
            return self.members.remove(&user).map(|m| m.name);
        }
        None
    }

    /// Whether `user` is in the room on another node.
    pub(crate) fn is_remote(&self, user: u32) -> bool {
        self.remote.values().any(|r| r.users.contains_key(&user))
    }

    /// This node's members, by user id (what this node announces to the others).
    pub(crate) fn local_members(&self) -> Vec<(u32, Arc<str>)> {
        let mut users: Vec<(u32, Arc<str>)> = self.members.iter().map(|(u, m)| (*u, m.name.clone())).collect();
        users.sort_unstable_by_key(|(u, _)| *u);
        users
    }

    /// Cluster mode: `node` announced its whole member list at `now_ms` (empty: none left).
    /// Returns who appeared in the room and who vanished from it (present nowhere else).
    pub(crate) fn set_remote(&mut self, node: u64, users: Vec<(u32, Arc<str>)>, now_ms: u64) -> (Changes, Changes) {
        let old = self.remote.remove(&node).map(|r| r.users).unwrap_or_default();
        let new: HashMap<u32, Arc<str>> = users.into_iter().take(MAX_REMOTE_MEMBERS).collect();
        let here = |room: &Self, u: u32| room.members.contains_key(&u) || room.is_remote(u);
        let mut appeared: Changes = new
            .iter()
            .filter(|(u, _)| !old.contains_key(u) && !here(self, **u))
            .map(|(u, n)| (*u, n.clone()))
            .collect();
        let mut vanished: Changes = old
            .iter()
            .filter(|(u, _)| !new.contains_key(u) && !here(self, **u))
            .map(|(u, n)| (*u, n.clone()))
            .collect();
        appeared.sort_unstable_by_key(|(u, _)| *u);
        vanished.sort_unstable_by_key(|(u, _)| *u);
        if !new.is_empty() {
            self.remote.insert(node, Remote { seen_ms: now_ms, users: new });
        }
        (appeared, vanished)
    }

    /// Cluster mode: forgets the nodes not heard from since `before_ms` (dead, or cut off);
    /// returns who vanished with them.
    pub(crate) fn expire_remote(&mut self, before_ms: u64) -> Changes {
        let dead: Vec<u64> = self.remote.iter().filter(|(_, r)| r.seen_ms < before_ms).map(|(n, _)| *n).collect();
        let mut vanished = Changes::new();
        for node in dead {
            let (_, gone) = self.set_remote(node, Vec::new(), before_ms);
            vanished.extend(gone);
        }
        vanished
    }

    /// Whether any session on this node is in the room.
    pub(crate) fn has_members(&self) -> bool {
        self.sessions > 0
    }

    /// Shards with at least one member session.
    pub(crate) fn member_shards(&self) -> impl Iterator<Item = ShardId> + '_ {
        self.per_shard.iter().enumerate().filter(|(_, n)| **n > 0).map(|(s, _)| s)
    }

    /// The member list as `Presence{snapshot}` frames (several when large), by user id.
    pub(crate) fn presence_snapshot(&self) -> Bytes {
        let mut users: Vec<(u32, &str)> = self.members.iter().map(|(u, m)| (*u, &*m.name)).collect();
        users.extend(self.remote.values().flat_map(|r| r.users.iter().map(|(u, n)| (*u, &**n))));
        users.sort_unstable_by_key(|(u, _)| *u);
        users.dedup_by_key(|(u, _)| *u);
        let mut out = BytesMut::new();
        let chunks: Vec<&[(u32, &str)]> =
            if users.is_empty() { vec![&[]] } else { users.chunks(MAX_PRESENCE_ENTRIES).collect() };
        for chunk in chunks {
            let entries: Vec<PresenceEntry<'_>> =
                chunk.iter().map(|(user, name)| PresenceEntry { user: *user, name }).collect();
            let frame = ServerFrame::Presence(Presence {
                room: self.id,
                kind: PresenceKind::Snapshot,
                entries: List::Items(&entries),
            });
            if let Err(e) = frame.encode(&mut out) {
                tracing::error!(error = %e, room = self.id, "presence frame");
            }
        }
        out.freeze()
    }
}

/// A one-user `Presence` frame (joined or left).
pub(crate) fn presence_change(room: u32, kind: PresenceKind, user: u32, name: &str) -> Bytes {
    let entries = [PresenceEntry { user, name }];
    crate::shard::encode(&ServerFrame::Presence(Presence { room, kind, entries: List::Items(&entries) }))
}

#[cfg(test)]
mod tests {
    use pixelparty_protocol::server_frames;

    use super::*;

    #[test]
    fn presence_across_nodes_tells_only_real_changes() {
        let mut r = HomeRoom::new(1, 0, 1);
        r.join(7, "a".into(), 0);
        let (appeared, vanished) = r.set_remote(100, vec![(7, "a".into()), (8, "b".into())], 10);
        assert_eq!(appeared, vec![(8, Arc::from("b"))], "7 is here already");
        assert!(vanished.is_empty());
        let (appeared, _) = r.set_remote(200, vec![(8, "b".into()), (9, "c".into())], 20);
        assert_eq!(appeared, vec![(9, Arc::from("c"))], "8 is on node 100 already");
        assert!(r.is_remote(8) && r.is_remote(7), "7 is on node 100 too");
        let (_, vanished) = r.set_remote(100, vec![], 30);
        assert!(vanished.is_empty(), "7 is here, 8 is on node 200");
        assert_eq!(r.expire_remote(25), vec![(8, Arc::from("b")), (9, Arc::from("c"))], "node 200 went silent");
        assert!(!r.is_remote(8));
        r.set_remote(300, vec![(10, "d".into())], 40);
        let snapshot = r.presence_snapshot();
        assert!(!snapshot.is_empty());
        assert_eq!(r.local_members(), vec![(7, Arc::from("a"))]);
    }

    #[test]
    fn members_and_shards() {
        let mut r = HomeRoom::new(1, 0, 3);
        assert!(r.join(7, "a".into(), 0));
        assert!(!r.join(7, "a".into(), 2), "second session of the same user");
        assert!(r.join(8, "b".into(), 2));
        assert_eq!(r.member_shards().collect::<Vec<_>>(), [0, 2]);
        assert_eq!(r.leave(7, 0), None, "user 7 still has a session");
        assert_eq!(r.member_shards().collect::<Vec<_>>(), [2]);
        assert_eq!(r.leave(7, 2).as_deref(), Some("a"));
        assert!(!r.is_member(7) && r.is_member(8));
        assert_eq!(r.leave(7, 2), None, "not a member any more");
        assert_eq!(r.sessions(), 1);
    }

    #[test]
    fn large_presence_splits_into_frames() {
        let mut r = HomeRoom::new(1, 0, 1);
        for u in 0..1200 {
            r.join(u, format!("user{u}").into(), 0);
        }
        let bytes = r.presence_snapshot();
        let frames: Vec<_> = server_frames(&bytes).collect::<Result<_, _>>().unwrap();
        assert_eq!(frames.len(), 3);
        let total: usize = frames
            .iter()
            .map(|f| match f {
                ServerFrame::Presence(p) => p.entries.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(total, 1200);
    }
}
