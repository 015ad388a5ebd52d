//! A session as its shard sees it: identity, subscriptions, rooms, blocks, and the bounded
//! queue of encoded frames waiting for the transport.
//!
//! An idle session holds no buffer: the queue, the subscription list and the room list are
//! empty `Vec`/`VecDeque`s until used.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::task::Waker;

use bytes::Bytes;
use ipnet::IpNet;
use pixelparty_protocol::{CloseReason, Role};

/// Who a session belongs to, established by the transport before any frame flows.
#[derive(Debug, Clone)]
pub struct UserCtx {
    /// User id.
    pub id: u32,
    /// User name.
    pub name: Arc<str>,
    /// Role.
    pub role: Role,
    /// The login session it authenticated with, as a key ([`UserCtx::session_key`] of the
    /// token's hash; 0 for none): a logout ends exactly the live sessions opened with it.
    pub session: u64,
    /// When that login session expires (ms since the Unix epoch): the live session ends then.
    pub expires_ms: u64,
    /// The client's address, for address bans (unspecified when unknown).
    pub addr: IpAddr,
    /// The users this user blocks, sorted, as read by whoever authenticated the session (the
    /// shard never reads the store to connect; later changes come as `BlocksChanged`).
    pub blocks: Arc<[u32]>,
}

impl UserCtx {
    /// A user with no login session, expiry or address attached (tests, tools).
    pub fn new(id: u32, name: impl Into<Arc<str>>, role: Role) -> Self {
        Self {
            id,
            name: name.into(),
            role,
            session: 0,
            expires_ms: u64::MAX,
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            blocks: Arc::from([]),
        }
    }

    /// A logged-out visitor from `addr` (protocol version 3): user 0, no name, role
    /// [`Role::Visitor`]; the session may only watch the canvas.
    pub fn visitor(addr: IpAddr) -> Self {
        Self { addr, ..Self::new(0, "", Role::Visitor) }
    }

    /// The key of a login session: the first 8 bytes of its token's hash (never 0).
    pub fn session_key(token_hash: &[u8; 32]) -> u64 {
        let mut k = [0u8; 8];
        k.copy_from_slice(&token_hash[..8]);
        u64::from_le_bytes(k).max(1)
    }
}

/// Which live sessions an administrative end applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every session of a user.
    User(u32),
    /// The sessions a user opened with one login session (see [`UserCtx::session`]).
    Session {
        /// User id.
        user: u32,
        /// Login session key.
        session: u64,
    },
    /// Every session from an address range.
    Net(IpNet),
}

/// State of one tile subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sub {
    /// Waiting for the home shard's replay; live frames are skipped meanwhile.
    Pending,
    /// Receiving live frames.
    Live,
    /// Frames were dropped (slow consumer); nothing is sent until the client re-subscribes.
    Dropped,
    /// Waiting its turn to ask the home shard for a catch-up from this cursor: a session has
    /// at most [`crate::EngineConfig::catch_ups_per_session`] catch-ups on their way.
    Deferred(u64),
}

/// What kind of frame is being queued, for the backpressure policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Canvas updates: dropped (and the tile marked for resync) when the queue is full.
    Canvas,
    /// Everything else: may use the reserve; beyond it the session is closed.
    Reliable,
}

/// How a session ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// Reason (and close code).
    pub reason: CloseReason,
    /// Detail sent in the `Closing` frame.
    pub message: String,
}

#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) user: UserCtx,
    /// The protocol version agreed in `Hello` (0 until then).
    pub(crate) version: u16,
    /// Requests sent to a home shard and not yet answered by `ShardMsg::Done` (posts, room
    /// deletes, who), at most [`crate::shard::MAX_REQUESTS_IN_FLIGHT`].
    pub(crate) in_flight: u16,
    /// Catch-ups asked of home shards and not yet answered (`Sub::Pending` tiles).
    pub(crate) catch_ups: u16,
    /// Tiles in `Sub::Deferred`.
    pub(crate) deferred: u16,
    pub(crate) subs: Vec<(u32, Sub)>,
    pub(crate) rooms: Vec<u32>,
    /// Joins on their way to the room's home shard (room, request id).
    pub(crate) join_reqs: Vec<(u32, u32)>,
    /// Joins whose history page is being read (room, request id), with the room frames held
    /// meanwhile.
    pub(crate) joining: Vec<(u32, u32, Vec<Bytes>)>,
    /// Users this session's user blocks, sorted.
    pub(crate) blocks: Arc<[u32]>,
    /// Whether a `BlocksChanged` replaced `blocks` (a list read before it is older).
    pub(crate) blocks_updated: bool,
    pub(crate) queue: VecDeque<Bytes>,
    pub(crate) queued_bytes: usize,
    /// Tiles whose frames were dropped and must be announced in a `Resync`.
    pub(crate) resync: Vec<u32>,
    /// Boxed: rare, and an idle session should not carry its room.
    pub(crate) closing: Option<Box<Close>>,
    pub(crate) waker: Option<Waker>,
}

impl Conn {
    pub(crate) fn new(user: UserCtx, blocks: Arc<[u32]>) -> Self {
        Self {
            user,
            version: 0,
            in_flight: 0,
            catch_ups: 0,
            deferred: 0,
            subs: Vec::new(),
            rooms: Vec::new(),
            join_reqs: Vec::new(),
            joining: Vec::new(),
            blocks,
            blocks_updated: false,
            queue: VecDeque::new(),
            queued_bytes: 0,
            resync: Vec::new(),
            closing: None,
            waker: None,
        }
    }

    pub(crate) fn sub(&self, tile: u32) -> Option<Sub> {
        self.subs.iter().find(|(t, _)| *t == tile).map(|(_, s)| *s)
    }

    pub(crate) fn set_sub(&mut self, tile: u32, state: Sub) {
        let old = match self.subs.iter_mut().find(|(t, _)| *t == tile) {
            Some(entry) => Some(std::mem::replace(&mut entry.1, state)),
            None => {
                self.subs.push((tile, state));
                None
            }
        };
        self.count_deferred(old, Some(state));
    }

    /// Ends a subscription; returns whether there was one.
    pub(crate) fn remove_sub(&mut self, tile: u32) -> bool {
        let Some(i) = self.subs.iter().position(|(t, _)| *t == tile) else {
            return false;
        };
        let (_, old) = self.subs.remove(i);
        self.count_deferred(Some(old), None);
        self.resync.retain(|t| *t != tile);
        true
    }

    fn count_deferred(&mut self, old: Option<Sub>, new: Option<Sub>) {
        let was = matches!(old, Some(Sub::Deferred(_)));
        let is = matches!(new, Some(Sub::Deferred(_)));
        match (was, is) {
            (false, true) => self.deferred += 1,
            (true, false) => self.deferred -= 1,
            _ => {}
        }
    }

    /// The first deferred subscription, if any.
    pub(crate) fn first_deferred(&self) -> Option<(u32, u64)> {
        if self.deferred == 0 {
            return None;
        }
        self.subs.iter().find_map(|&(t, s)| match s {
            Sub::Deferred(c) => Some((t, c)),
            _ => None,
        })
    }

    /// Whether an administrative end aimed at `target` applies to this session.
    pub(crate) fn is_target(&self, target: &Target) -> bool {
        match *target {
            Target::User(user) => self.user.id == user,
            Target::Session { user, session } => self.user.id == user && self.user.session == session,
            Target::Net(net) => net.contains(&self.user.addr),
        }
    }

    pub(crate) fn blocks_user(&self, user: u32) -> bool {
        self.blocks.binary_search(&user).is_ok()
    }

    /// Queues `frame` under the backpressure policy. Returns `false` when the session must
    /// be closed as a slow consumer.
    pub(crate) fn push(&mut self, frame: Bytes, class: Class, max: usize, reserve: usize) -> bool {
        if self.closing.is_some() {
            return true; // Nothing more is sent to a closing session.
        }
        let limit = match class {
            Class::Canvas => max,
            Class::Reliable => max + reserve,
        };
        if self.queued_bytes + frame.len() > limit {
            return class == Class::Canvas;
        }
        self.queued_bytes += frame.len();
        self.queue.push_back(frame);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
        true
    }

    /// Marks the session closing: the transport sends the `Closing` frame and closes.
    pub(crate) fn close(&mut self, reason: CloseReason, message: impl Into<String>) {
        if self.closing.is_none() {
            self.closing = Some(Box::new(Close { reason, message: message.into() }));
            if let Some(w) = self.waker.take() {
                w.wake();
            }
        }
    }
}
