//! Who is online, for friends' online status: `online` in `GET /friends` and the `Social`
//! frames `online` / `offline` (protocol version 3).
//!
//! A user is online while they have at least one live session (WebSocket or WebTransport) on
//! any node. Each session holds an [`OnlineGuard`]; this node counts its own sessions per
//! user, and in cluster mode hears every other node's whole list of online users (announced
//! after a change, at most every [`ANNOUNCE_MIN_MS`], and every `cluster.presence_ms`); a node
//! not heard from for three rounds is gone, and its users with it.
//!
//! One task ([`run`]) tells friends: a user whose state may have changed is queued (bounded;
//! an overflow makes the task look at everyone again, a bounded batch per tick), and the task
//! compares the user's state now with what their friends were last told, reading the friends
//! from the store only for a real change. Going offline is told only after
//! [`OFFLINE_GRACE_MS`], so a page reload (offline, then online within moments) tells nothing.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use pixelparty_protocol::SocialKind;

use crate::app::App;

/// Changes queued for the task before it reconciles everyone instead.
const QUEUE: usize = 4096;
/// Fewest milliseconds between two announcements of this node's list.
pub const ANNOUNCE_MIN_MS: u64 = 250;
/// Most friends told of one change (the friend list's own bound).
const MAX_FRIENDS: usize = 1000;

#[derive(Debug, Default)]
struct State {
    /// Live sessions on this node, per user.
    local: HashMap<u32, u32>,
    /// Other nodes' online users, and when each was last heard (ms).
    remote: HashMap<u64, (HashSet<u32>, u64)>,
    /// This node's list changed since it was last announced.
    dirty: bool,
}

impl State {
    fn online(&self, user: u32) -> bool {
        self.local.contains_key(&user) || self.remote.values().any(|(users, _)| users.contains(&user))
    }
}

/// This node's view of who is online (see the module documentation).
#[derive(Debug)]
pub struct Online {
    state: Mutex<State>,
    changed: tokio::sync::mpsc::Sender<u32>,
    queue: Mutex<Option<tokio::sync::mpsc::Receiver<u32>>>,
    /// A change could not be queued: the task reconciles every user it knows of.
    overflowed: AtomicBool,
}

impl Default for Online {
    fn default() -> Self {
        let (changed, queue) = tokio::sync::mpsc::channel(QUEUE);
        Self { state: Mutex::default(), changed, queue: Mutex::new(Some(queue)), overflowed: AtomicBool::new(false) }
    }
}

/// Held by a live session: its user counts as online on this node until it is dropped.
#[derive(Debug)]
pub struct OnlineGuard {
    online: Arc<Online>,
    user: u32,
}

impl Drop for OnlineGuard {
    fn drop(&mut self) {
        let gone = {
            let mut s = self.online.state.lock();
            let gone = match s.local.get_mut(&self.user) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => s.local.remove(&self.user).is_some(),
                None => false,
            };
            s.dirty |= gone;
            gone
        };
        if gone {
            self.online.queue_change(self.user);
        }
    }
}

impl Online {
    /// Counts a live session of `user` until the guard is dropped.
    pub fn enter(self: &Arc<Self>, user: u32) -> OnlineGuard {
        let first = {
            let mut s = self.state.lock();
            let n = s.local.entry(user).or_insert(0);
            *n += 1;
            let first = *n == 1;
            s.dirty |= first;
            first
        };
        if first {
            self.queue_change(user);
        }
        OnlineGuard { online: self.clone(), user }
    }

    fn queue_change(&self, user: u32) {
        if self.changed.try_send(user).is_err() {
            self.overflowed.store(true, Ordering::Release);
        }
    }

    /// Users with a live session on this node.
    pub fn local_users(&self) -> usize {
        self.state.lock().local.len()
    }

    /// Whether `user` has a live session on any node (as far as this node knows).
    pub fn is_online(&self, user: u32) -> bool {
        self.state.lock().online(user)
    }

    /// Cluster mode: `node`'s whole list of online users, heard at `now_ms`.
    pub fn remote(&self, node: u64, users: Vec<u32>, now_ms: u64) {
        let users: HashSet<u32> = users.into_iter().collect();
        let changed: Vec<u32> = {
            let mut s = self.state.lock();
            let before = s.remote.remove(&node).map(|(u, _)| u).unwrap_or_default();
            let changed = before.symmetric_difference(&users).copied().collect();
            s.remote.insert(node, (users, now_ms));
            changed
        };
        for user in changed {
            self.queue_change(user);
        }
    }

    /// Cluster mode: forgets the nodes not heard from since `silent_since_ms`; their users
    /// (whose state may have changed).
    fn expire(&self, silent_since_ms: u64) -> Vec<u32> {
        let mut s = self.state.lock();
        let nodes: Vec<u64> =
            s.remote.iter().filter(|(_, (_, heard))| *heard < silent_since_ms).map(|(n, _)| *n).collect();
        nodes.into_iter().filter_map(|n| s.remote.remove(&n)).flat_map(|(users, _)| users).collect()
    }

    /// This node's online users, if they changed since the last call (or `always`).
    fn local_list(&self, always: bool) -> Option<Vec<u32>> {
        let mut s = self.state.lock();
        if !(s.dirty || always) {
            return None;
        }
        s.dirty = false;
        Some(s.local.keys().copied().collect())
    }

    /// Every user this node knows to be online.
    fn everyone(&self) -> HashSet<u32> {
        let s = self.state.lock();
        s.local.keys().copied().chain(s.remote.values().flat_map(|(users, _)| users.iter().copied())).collect()
    }
}

/// How long a user stays "online" for their friends after their last session ended: a page
/// reload (offline, then online within moments) tells nothing.
pub const OFFLINE_GRACE_MS: u64 = 3_000;
/// Users looked at again per tick after an overflow, an expired node or a failed read.
const BATCH: usize = 256;

/// What friends were told and what is still to decide: the pure part of [`run`].
#[derive(Debug, Default)]
struct Teller {
    /// Users whose friends were last told "online".
    told: HashSet<u32>,
    /// Users gone offline whose friends are told once the grace ends (when, in ms).
    leaving: HashMap<u32, u64>,
    /// Users to look at again, in order, without repeats.
    backlog: VecDeque<u32>,
    queued: HashSet<u32>,
}

impl Teller {
    /// `user` is `online` now: whether to tell friends "online" (`Some(true)`) or "offline"
    /// (`Some(false)`). An offline user is told only after [`OFFLINE_GRACE_MS`] (`grace`), or
    /// at once when the grace is over (`!grace`).
    fn consider(&mut self, user: u32, online: bool, now_ms: u64, grace: bool) -> Option<bool> {
        let told = self.told.contains(&user);
        if online || !told {
            self.leaving.remove(&user);
            return (online && !told).then_some(true);
        }
        if grace {
            self.leaving.entry(user).or_insert(now_ms + OFFLINE_GRACE_MS);
            return None;
        }
        self.leaving.remove(&user);
        Some(false)
    }

    /// Friends of `user` were told `online`.
    fn mark(&mut self, user: u32, online: bool) {
        if online {
            self.told.insert(user);
        } else {
            self.told.remove(&user);
        }
    }

    /// Users whose grace is over at `now_ms`.
    fn due(&mut self, now_ms: u64) -> Vec<u32> {
        let due: Vec<u32> = self.leaving.iter().filter(|(_, at)| **at <= now_ms).map(|(u, _)| *u).collect();
        for u in &due {
            self.leaving.remove(u);
        }
        due
    }

    /// Looks at `users` again on the next ticks.
    fn again(&mut self, users: impl IntoIterator<Item = u32>) {
        for u in users {
            if self.queued.insert(u) {
                self.backlog.push_back(u);
            }
        }
    }

    /// The next users to look at again, at most [`BATCH`].
    fn batch(&mut self) -> Vec<u32> {
        let n = self.backlog.len().min(BATCH);
        let out: Vec<u32> = self.backlog.drain(..n).collect();
        for u in &out {
            self.queued.remove(u);
        }
        out
    }

    /// Every user whose state friends may have been told of.
    fn known(&self) -> impl Iterator<Item = u32> + '_ {
        self.told.iter().chain(self.leaving.keys()).copied()
    }
}

/// Tells friends of changes, and in cluster mode announces this node's list and expires
/// silent nodes. Runs for the process's life (on the admin runtime). Each tick does a bounded
/// amount of telling after its announcement, so a flood of changes never delays the list the
/// other nodes expire this one by.
pub async fn run(app: Arc<App>) {
    let Some(mut queue) = app.online.queue.lock().take() else { return };
    let online = app.online.clone();
    let presence_ms = app.config.cluster.enabled().then(|| app.config.cluster.presence_ms.max(ANNOUNCE_MIN_MS));
    let mut teller = Teller::default();
    let mut every = tokio::time::interval(Duration::from_millis(ANNOUNCE_MIN_MS));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_full = 0u64;
    loop {
        tokio::select! {
            user = queue.recv() => {
                let Some(user) = user else { return };
                consider(&app, &mut teller, user, true).await;
            }
            _ = every.tick() => {
                let now = pixelparty_engine::now_ms();
                if let (Some(presence_ms), Some(cluster)) = (presence_ms, app.cluster.get()) {
                    let gone = online.expire(now.saturating_sub(3 * presence_ms));
                    teller.again(gone);
                    let full = now.saturating_sub(last_full) >= presence_ms;
                    if let Some(list) = online.local_list(full) {
                        cluster.announce_online(list);
                        if full {
                            last_full = now;
                        }
                    }
                }
                if online.overflowed.swap(false, Ordering::AcqRel) {
                    let known: Vec<u32> = teller.known().collect();
                    teller.again(online.everyone().into_iter().chain(known));
                }
                for user in teller.due(now) {
                    consider(&app, &mut teller, user, false).await;
                }
                for user in teller.batch() {
                    consider(&app, &mut teller, user, true).await;
                }
            }
        }
    }
}

/// Looks at `user`'s state now and tells their friends if the teller says so.
async fn consider(app: &App, teller: &mut Teller, user: u32, grace: bool) {
    let online = app.online.is_online(user);
    let Some(tell_online) = teller.consider(user, online, pixelparty_engine::now_ms(), grace) else { return };
    let friends = match app.store.call(move |b| b.friends_of(user, MAX_FRIENDS)).await {
        Ok(list) => list.into_iter().map(|r| r.user).collect::<Vec<u32>>(),
        Err(e) => {
            // Not marked as told: looked at again on a later tick.
            tracing::warn!(error = %e, user, "reading friends for an online change failed");
            return teller.again([user]);
        }
    };
    teller.mark(user, tell_online);
    if friends.is_empty() {
        return;
    }
    let name = match app.names([user]).await {
        Ok(mut names) => names.remove(&user).unwrap_or_default(),
        Err(_) => String::new(),
    };
    let kind = if tell_online { SocialKind::Online } else { SocialKind::Offline };
    app.engine.social(Some(&friends), kind, user, &name).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(rx: &mut tokio::sync::mpsc::Receiver<u32>) -> Vec<u32> {
        let mut out = Vec::new();
        while let Ok(u) = rx.try_recv() {
            out.push(u);
        }
        out
    }

    #[test]
    fn a_user_is_online_while_any_session_lives_and_only_transitions_are_queued() {
        let online = Arc::new(Online::default());
        let mut rx = online.queue.lock().take().unwrap();
        let a = online.enter(7);
        let b = online.enter(7);
        assert!(online.is_online(7));
        assert_eq!(drain(&mut rx), [7], "the first session is a change, the second is not");
        drop(a);
        assert!(online.is_online(7), "one tab closed, the other open");
        assert!(drain(&mut rx).is_empty());
        drop(b);
        assert!(!online.is_online(7));
        assert_eq!(drain(&mut rx), [7]);
        assert_eq!(online.local_list(false), Some(vec![]), "the list changed since the last announcement");
        assert_eq!(online.local_list(false), None, "and not since");
    }

    #[test]
    fn other_nodes_lists_count_until_the_node_goes_silent() {
        let online = Arc::new(Online::default());
        let mut rx = online.queue.lock().take().unwrap();
        online.remote(9, vec![1, 2], 1_000);
        assert!(online.is_online(1) && online.is_online(2));
        let mut changed = drain(&mut rx);
        changed.sort_unstable();
        assert_eq!(changed, [1, 2]);
        online.remote(9, vec![2, 3], 2_000);
        let mut changed = drain(&mut rx);
        changed.sort_unstable();
        assert_eq!(changed, [1, 3], "only who came or went");
        let _here = online.enter(3);
        drain(&mut rx);
        assert!(online.expire(1_500).is_empty());
        assert!(online.is_online(2), "heard at 2000, not silent since 1500");
        let mut gone = online.expire(2_500);
        gone.sort_unstable();
        assert_eq!(gone, [2, 3], "the silent node's users, to look at again");
        assert!(!online.is_online(2), "the silent node took its users");
        assert!(online.is_online(3), "a user also here stays online");
    }

    #[test]
    fn online_is_told_at_once_and_offline_after_the_grace_unless_they_came_back() {
        let mut t = Teller::default();
        assert_eq!(t.consider(7, true, 0, true), Some(true));
        t.mark(7, true);
        assert_eq!(t.consider(7, true, 5, true), None, "told already");
        // A reload: gone, then back within the grace: nothing, ever.
        assert_eq!(t.consider(7, false, 10, true), None);
        assert_eq!(t.consider(7, true, 500, true), None);
        assert!(t.due(10 + OFFLINE_GRACE_MS).is_empty(), "the return cancelled the offline");
        // Gone for good: told when the grace is over.
        assert_eq!(t.consider(7, false, 1_000, true), None);
        assert!(t.due(1_000 + OFFLINE_GRACE_MS - 1).is_empty());
        assert_eq!(t.due(1_000 + OFFLINE_GRACE_MS), [7]);
        assert_eq!(t.consider(7, false, 1_000 + OFFLINE_GRACE_MS, false), Some(false));
        t.mark(7, false);
        assert_eq!(t.consider(7, false, 9_000, true), None, "friends know already");
        assert_eq!(t.consider(8, false, 0, true), None, "never told online: nothing to take back");
    }

    #[test]
    fn the_backlog_is_looked_at_in_bounded_batches_without_repeats() {
        let mut t = Teller::default();
        t.again(0..(BATCH as u32 + 10));
        t.again([3, 4]);
        assert_eq!(t.batch().len(), BATCH);
        assert_eq!(t.batch(), (BATCH as u32..BATCH as u32 + 10).collect::<Vec<_>>());
        assert!(t.batch().is_empty());
        t.again([3]);
        assert_eq!(t.batch(), [3], "a user looked at can be queued again");
    }

    #[test]
    fn a_full_queue_asks_for_a_reconciliation_instead_of_losing_a_change() {
        let online = Arc::new(Online::default());
        let _rx = online.queue.lock().take().unwrap();
        let guards: Vec<OnlineGuard> = (0..QUEUE as u32 + 1).map(|u| online.enter(u)).collect();
        assert!(online.overflowed.load(Ordering::Acquire));
        assert_eq!(online.everyone().len(), guards.len());
    }
}
