//! The mesh of bounded inboxes between shards, with one wakeup per batch.
//!
//! Each shard owns one inbox (a bounded crossbeam channel) for messages from other shards and
//! one small completion queue for its own storage batches. A shard that is about to sleep sets
//! its `sleeping` flag; a sender wakes it only when it finds the flag set, so a busy shard is
//! never notified and a burst of messages costs one wakeup.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use tokio::sync::Notify;

use crate::msg::ShardMsg;
use crate::routing::ShardId;

/// A storage outcome reported back to the shard that submitted the write, in submission
/// any order. Each shard bounds how many it has outstanding, so the queue never overflows.
#[derive(Debug)]
pub enum Completion {
    /// A tick batch (pixels, room messages, deletions) is durable, or failed.
    Tick {
        /// Batch number (checked to be the oldest in flight).
        batch: u64,
        /// Durable (with the sequences the store assigned, in cluster mode), or why not (see
        /// [`crate::msg::Refusal::store_failed`]).
        result: Result<pixelparty_storage::Sequenced, crate::msg::Refusal>,
    },
    /// The answer to one of the shard's storage requests, ready to apply
    /// (see [`crate::asks`]).
    Storage(crate::asks::Resume),
}

/// One shard's receiving side, shared by every sender.
#[derive(Debug)]
pub struct Inbox {
    tx: Sender<ShardMsg>,
    rx: Receiver<ShardMsg>,
    done_tx: Sender<Completion>,
    done_rx: Receiver<Completion>,
    sleeping: AtomicBool,
    notify: Notify,
    /// Milliseconds (engine clock) when the shard last finished a loop turn.
    pub last_turn_ms: AtomicU64,
    /// Times the shard was reported as stalled.
    pub stalls: AtomicU64,
    /// Messages dropped because this inbox was full (only for deliveries that history
    /// repairs, such as live direct messages).
    pub dropped: AtomicU64,
}

/// Every shard's inbox.
#[derive(Debug)]
pub struct Mesh {
    inboxes: Box<[Inbox]>,
}

impl Mesh {
    /// A mesh of `shards` inboxes of `capacity` messages; completion queues hold
    /// `completions` (the most storage writes a shard keeps outstanding).
    pub fn new(shards: usize, capacity: usize, completions: usize) -> Self {
        let inboxes = (0..shards)
            .map(|_| {
                let (tx, rx) = crossbeam_channel::bounded(capacity);
                // Room for every write a shard may have outstanding plus one, so a completion
                // never finds the queue full.
                let (done_tx, done_rx) = crossbeam_channel::bounded(completions + 1);
                Inbox {
                    tx,
                    rx,
                    done_tx,
                    done_rx,
                    sleeping: AtomicBool::new(false),
                    notify: Notify::new(),
                    last_turn_ms: AtomicU64::new(0),
                    stalls: AtomicU64::new(0),
                    dropped: AtomicU64::new(0),
                }
            })
            .collect();
        Self { inboxes }
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.inboxes.len()
    }

    /// A shard's inbox.
    pub fn inbox(&self, shard: ShardId) -> &Inbox {
        &self.inboxes[shard]
    }

    /// Queues `msg` for `to` without waking it; gives the message back when the inbox is full.
    pub fn try_push(&self, to: ShardId, msg: ShardMsg) -> Result<(), ShardMsg> {
        match self.inboxes[to].tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(m) | TrySendError::Disconnected(m)) => Err(m),
        }
    }

    /// Wakes `to` if it is asleep.
    pub fn wake(&self, to: ShardId) {
        let inbox = &self.inboxes[to];
        if inbox.sleeping.swap(false, Ordering::AcqRel) {
            inbox.notify.notify_one();
        }
    }

    /// Queues and wakes: for senders outside the shards (storage callbacks, the gateway).
    /// Gives the message back when the inbox is full.
    pub fn send(&self, to: ShardId, msg: ShardMsg) -> Result<(), ShardMsg> {
        self.try_push(to, msg)?;
        self.wake(to);
        Ok(())
    }

    /// Reports a storage outcome to the shard that submitted the write.
    pub fn complete(&self, to: ShardId, completion: Completion) {
        // Cannot be full: a shard bounds its outstanding writes by the queue's capacity.
        if self.inboxes[to].done_tx.try_send(completion).is_err() {
            tracing::error!(shard = to, "completion queue full; this is a bug");
        }
        self.wake(to);
    }

    /// Takes the next message for `shard`, if any.
    pub fn try_recv(&self, shard: ShardId) -> Option<ShardMsg> {
        self.inboxes[shard].rx.try_recv().ok()
    }

    /// Takes the next storage completion for `shard`, if any.
    pub fn try_recv_done(&self, shard: ShardId) -> Option<Completion> {
        self.inboxes[shard].done_rx.try_recv().ok()
    }

    /// Waits up to `timeout` for the next storage completion of `shard` (test harness).
    pub fn recv_done_timeout(&self, shard: ShardId, timeout: std::time::Duration) -> Option<Completion> {
        self.inboxes[shard].done_rx.recv_timeout(timeout).ok()
    }

    /// Messages waiting for `shard`.
    pub fn queued(&self, shard: ShardId) -> usize {
        self.inboxes[shard].rx.len() + self.inboxes[shard].done_rx.len()
    }

    /// Messages (not storage completions) waiting for `shard`.
    pub fn messages_queued(&self, shard: ShardId) -> usize {
        self.inboxes[shard].rx.len()
    }

    /// Waits until something arrives for `shard` (or it is woken).
    pub async fn sleep(&self, shard: ShardId) {
        let inbox = &self.inboxes[shard];
        let notified = inbox.notify.notified();
        inbox.sleeping.store(true, Ordering::Release);
        // Re-check after announcing sleep: a sender that pushed before seeing the flag did not
        // wake us.
        if !inbox.rx.is_empty() || !inbox.done_rx.is_empty() {
            inbox.sleeping.store(false, Ordering::Release);
            return;
        }
        notified.await;
    }
}
