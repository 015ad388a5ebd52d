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
}

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
        users.sort_unstable_by_key(|(u, _)| *u);
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
