//! The social graph: friend requests, friendships and blocks.
//!
//! A request is stored twice (outgoing under the sender, incoming under the recipient) and a
//! friendship in both directions, so every list is one prefix scan. Blocking someone ends any
//! friendship and pending request between the two.

use crate::codec::{key, key_u32};
use crate::db::{Db, names};
use crate::error::{Result, StorageError};
use crate::records::{Relation, decode_time, encode_time};
use crate::writer::Tx;

/// What a friend request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FriendOutcome {
    /// A request is now pending.
    Requested,
    /// The other user had already asked: the two are now friends.
    BecameFriends,
}

/// What [`Tx::remove_relation`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    /// A friendship (unfriend).
    Friend,
    /// A request the other user sent (decline).
    Incoming,
    /// A request this user sent (cancel).
    Outgoing,
}

fn pair(a: u32, b: u32) -> Vec<u8> {
    key(&[&a.to_be_bytes(), &b.to_be_bytes()])
}

impl Db {
    fn relations(&self, ks: &fjall::Keyspace, name: &'static str, user: u32, limit: usize) -> Result<Vec<Relation>> {
        ks.prefix(user.to_be_bytes())
            .take(limit)
            .map(|g| {
                let (k, v) = g.into_inner()?;
                Ok(Relation { user: key_u32(name, &k, 4)?, since_ms: decode_time(name, &v)? })
            })
            .collect()
    }

    /// Whether `a` and `b` are friends.
    pub fn are_friends(&self, a: u32, b: u32) -> Result<bool> {
        Ok(self.friends.contains_key(pair(a, b))?)
    }

    /// Up to `limit` friends of `user`, by id.
    pub fn friends_of(&self, user: u32, limit: usize) -> Result<Vec<Relation>> {
        self.relations(&self.friends, names::FRIENDS, user, limit)
    }

    /// Up to `limit` pending requests others sent to `user`.
    pub fn incoming_requests(&self, user: u32, limit: usize) -> Result<Vec<Relation>> {
        self.relations(&self.friend_in, names::FRIEND_IN, user, limit)
    }

    /// Up to `limit` pending requests `user` sent.
    pub fn outgoing_requests(&self, user: u32, limit: usize) -> Result<Vec<Relation>> {
        self.relations(&self.friend_out, names::FRIEND_OUT, user, limit)
    }

    /// Up to `limit` users that `user` blocks.
    pub fn blocks_of(&self, user: u32, limit: usize) -> Result<Vec<Relation>> {
        self.relations(&self.blocks, names::BLOCKS, user, limit)
    }

    /// Whether `blocker` blocks `blocked`.
    pub fn is_blocking(&self, blocker: u32, blocked: u32) -> Result<bool> {
        Ok(self.blocks.contains_key(pair(blocker, blocked))?)
    }

    /// Whether either of the two blocks the other.
    pub fn blocked_either(&self, a: u32, b: u32) -> Result<bool> {
        Ok(self.is_blocking(a, b)? || self.is_blocking(b, a)?)
    }

    fn request_pending(&self, from: u32, to: u32) -> Result<bool> {
        Ok(self.friend_out.contains_key(pair(from, to))?)
    }
}

impl Tx<'_> {
    fn drop_request(&mut self, from: u32, to: u32) {
        let db = self.db;
        self.del(&db.friend_out, pair(from, to));
        self.del(&db.friend_in, pair(to, from));
    }

    fn make_friends(&mut self, a: u32, b: u32, now_ms: u64) {
        let db = self.db;
        self.put(&db.friends, pair(a, b), encode_time(now_ms));
        self.put(&db.friends, pair(b, a), encode_time(now_ms));
    }

    /// `from` asks `to` to be friends; if `to` had already asked `from`, they become friends.
    pub fn request_friend(&mut self, from: u32, to: u32, now_ms: u64) -> Result<FriendOutcome> {
        if from == to {
            return Err(StorageError::invalid("cannot befriend yourself"));
        }
        if self.user(to)?.is_none() {
            return Err(StorageError::not_found("user"));
        }
        if self.blocked_either(from, to)? {
            return Err(StorageError::conflict("blocked"));
        }
        if self.are_friends(from, to)? {
            return Err(StorageError::conflict("already friends"));
        }
        if self.request_pending(to, from)? {
            self.drop_request(to, from);
            self.make_friends(from, to, now_ms);
            return Ok(FriendOutcome::BecameFriends);
        }
        if self.request_pending(from, to)? {
            return Err(StorageError::conflict("request already pending"));
        }
        let db = self.db;
        self.put(&db.friend_out, pair(from, to), encode_time(now_ms));
        self.put(&db.friend_in, pair(to, from), encode_time(now_ms));
        Ok(FriendOutcome::Requested)
    }

    /// `me` accepts the request `from` sent.
    pub fn accept_friend(&mut self, me: u32, from: u32, now_ms: u64) -> Result<()> {
        if !self.request_pending(from, me)? {
            return Err(StorageError::not_found("friend request"));
        }
        self.drop_request(from, me);
        self.make_friends(me, from, now_ms);
        Ok(())
    }

    /// Removes whatever links `me` to `other`: a friendship, else a request either way.
    pub fn remove_relation(&mut self, me: u32, other: u32) -> Result<Removed> {
        if self.are_friends(me, other)? {
            let db = self.db;
            self.del(&db.friends, pair(me, other));
            self.del(&db.friends, pair(other, me));
            Ok(Removed::Friend)
        } else if self.request_pending(other, me)? {
            self.drop_request(other, me);
            Ok(Removed::Incoming)
        } else if self.request_pending(me, other)? {
            self.drop_request(me, other);
            Ok(Removed::Outgoing)
        } else {
            Err(StorageError::not_found("friend or request"))
        }
    }

    /// `blocker` blocks `blocked`: ends any friendship or request between them, and says
    /// which (from the blocker's side). Unblocking does not bring it back: a block is a
    /// clean break, and friendship starts again only with a new request.
    pub fn block(&mut self, blocker: u32, blocked: u32, now_ms: u64) -> Result<Option<Removed>> {
        if blocker == blocked {
            return Err(StorageError::invalid("cannot block yourself"));
        }
        if self.user(blocked)?.is_none() {
            return Err(StorageError::not_found("user"));
        }
        let ended = match self.remove_relation(blocker, blocked) {
            Ok(r) => Some(r),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        let db = self.db;
        self.put(&db.blocks, pair(blocker, blocked), encode_time(now_ms));
        Ok(ended)
    }

    /// Lifts a block. Returns whether there was one.
    pub fn unblock(&mut self, blocker: u32, blocked: u32) -> Result<bool> {
        if !self.is_blocking(blocker, blocked)? {
            return Ok(false);
        }
        let db = self.db;
        self.del(&db.blocks, pair(blocker, blocked));
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use crate::records::Role;
    use crate::testing::temp_fjall;

    use super::*;

    fn users(store: &crate::Fjall, n: u32) {
        for i in 0..n {
            store.run(move |tx| tx.create_user(&format!("u{i}"), "h", Role::User, 0)).unwrap();
        }
    }

    #[test]
    fn request_accept_remove() {
        let (_dir, store) = temp_fjall();
        users(&store, 3);
        assert_eq!(store.run(|tx| tx.request_friend(1, 2, 10)).unwrap(), FriendOutcome::Requested);
        assert!(store.run(|tx| tx.request_friend(1, 2, 11)).unwrap_err().is_conflict());
        assert_eq!(store.incoming_requests(2, 10).unwrap(), vec![Relation { user: 1, since_ms: 10 }]);
        assert_eq!(store.outgoing_requests(1, 10).unwrap().len(), 1);
        store.run(|tx| tx.accept_friend(2, 1, 20)).unwrap();
        assert!(store.are_friends(1, 2).unwrap() && store.are_friends(2, 1).unwrap());
        assert!(store.incoming_requests(2, 10).unwrap().is_empty());
        assert_eq!(store.run(|tx| tx.remove_relation(2, 1)).unwrap(), Removed::Friend);
        assert!(!store.are_friends(1, 2).unwrap());
        assert!(store.run(|tx| tx.remove_relation(2, 1)).unwrap_err().is_not_found());
        assert!(store.run(|tx| tx.request_friend(1, 99, 0)).unwrap_err().is_not_found());
        assert!(store.run(|tx| tx.accept_friend(3, 1, 0)).unwrap_err().is_not_found());
    }

    #[test]
    fn crossing_requests_make_friends() {
        let (_dir, store) = temp_fjall();
        users(&store, 2);
        store.run(|tx| tx.request_friend(1, 2, 0)).unwrap();
        assert_eq!(store.run(|tx| tx.request_friend(2, 1, 0)).unwrap(), FriendOutcome::BecameFriends);
        assert!(store.are_friends(1, 2).unwrap());
    }

    #[test]
    fn blocking_ends_friendship_and_refuses_requests() {
        let (_dir, store) = temp_fjall();
        users(&store, 2);
        store.run(|tx| tx.request_friend(1, 2, 0)).unwrap();
        store.run(|tx| tx.accept_friend(2, 1, 0)).unwrap();
        assert_eq!(store.run(|tx| tx.block(2, 1, 5)).unwrap(), Some(Removed::Friend), "says what it ended");
        assert!(!store.are_friends(1, 2).unwrap());
        assert!(store.is_blocking(2, 1).unwrap() && !store.is_blocking(1, 2).unwrap());
        assert!(store.blocked_either(1, 2).unwrap());
        assert!(store.run(|tx| tx.request_friend(1, 2, 0)).unwrap_err().is_conflict());
        assert_eq!(store.blocks_of(2, 10).unwrap(), vec![Relation { user: 1, since_ms: 5 }]);
        assert!(store.run(|tx| tx.unblock(2, 1)).unwrap());
        assert!(!store.run(|tx| tx.unblock(2, 1)).unwrap());
        assert!(!store.are_friends(1, 2).unwrap(), "unblocking does not bring the friendship back");
        assert!(!store.blocked_either(1, 2).unwrap());
    }
}
