//! Storage requests of a shard: the shard never waits on the store. It asks
//! ([`Shard::ask`]) and goes on; the store answers on its own runtime, the answer comes back
//! through the shard's completion queue as a [`Resume`], and the shard applies it on a later
//! loop turn with the clock of that turn. A shard keeps at most [`MAX_ASKS_IN_FLIGHT`] asks
//! outstanding, so its completion queue never overflows; beyond that an ask is answered with
//! an overloaded error.

use std::sync::Arc;

use pixelparty_protocol::ErrorCode;
use pixelparty_storage::{Backend, Op, StorageError};

use crate::mesh::Completion;
use crate::metrics::ShardMetrics;
use crate::msg::{ConnId, Refusal};
use crate::shard::Shard;

/// Most storage requests (other than tick batches) one shard keeps outstanding.
pub const MAX_ASKS_IN_FLIGHT: usize = 1024;

/// What a shard does with an answer (captured inside), given the clock of its turn.
type Then = Box<dyn FnOnce(&mut Shard, u64) + Send>;

/// An answer from the store with what the shard does with it.
pub struct Resume {
    seq: u64,
    then: Then,
}

impl Resume {
    /// The ask's number on its shard (the order it was asked in).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub(crate) fn run(self, shard: &mut Shard, now_ms: u64) {
        (self.then)(shard, now_ms);
    }
}

impl std::fmt::Debug for Resume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resume")
    }
}

/// The refusal for a request a shard cannot queue.
pub(crate) fn busy() -> Refusal {
    Refusal { code: ErrorCode::Overloaded, retry_after_ms: 100, message: "server busy" }
}

impl Shard {
    /// Sends `op` to the store; `then` runs on this shard, exactly once, with its answer and
    /// the clock of the turn that applies it. When the ask cannot be made (too many
    /// outstanding, or the store saturated) `then` gets an overloaded error on the next turn
    /// instead, so every caller has one path for answers.
    pub(crate) fn ask<T, F, K>(&mut self, op: F, then: K)
    where
        T: Send + 'static,
        F: FnOnce(&Arc<dyn Backend>) -> Op<T>,
        K: FnOnce(&mut Shard, Result<T, StorageError>, u64) + Send + 'static,
    {
        let seq = self.next_ask;
        self.next_ask += 1;
        if self.asks_in_flight >= MAX_ASKS_IN_FLIGHT {
            ShardMetrics::add(&self.metrics().overloaded, 1);
            let then = Box::new(move |s: &mut Shard, now_ms| then(s, Err(StorageError::overloaded()), now_ms));
            return self.asks_refused.push_back(Resume { seq, then });
        }
        let (shared, shard) = (self.shared.clone(), self.id());
        // The callback is kept until the store takes the operation, so a refusal can still
        // answer through it.
        let then = Arc::new(parking_lot::Mutex::new(Some(then)));
        let answer = then.clone();
        let sent = self.store().request(op, move |result| {
            let Some(then) = answer.lock().take() else { return };
            let then = Box::new(move |s: &mut Shard, now_ms| then(s, result, now_ms));
            shared.mesh.complete(shard, Completion::Storage(Resume { seq, then }));
        });
        match sent {
            Ok(()) => self.asks_in_flight += 1,
            Err(e) => {
                ShardMetrics::add(&self.metrics().overloaded, 1);
                if let Some(then) = then.lock().take() {
                    let then = Box::new(move |s: &mut Shard, now_ms| then(s, Err(e), now_ms));
                    self.asks_refused.push_back(Resume { seq, then });
                }
            }
        }
    }
}

impl Shard {
    /// [`Shard::ask`] on behalf of a session's request: counted among the session's requests
    /// in flight (see [`Shard::admit_remote`], which the caller checks first) until `then`
    /// runs, so that one session cannot take its shard's whole budget of asks.
    pub(crate) fn ask_for<T, F, K>(&mut self, id: ConnId, op: F, then: K)
    where
        T: Send + 'static,
        F: FnOnce(&Arc<dyn Backend>) -> Op<T>,
        K: FnOnce(&mut Shard, Result<T, StorageError>, u64) + Send + 'static,
    {
        if let Some(c) = self.conn_mut(id) {
            c.in_flight += 1;
        }
        self.ask(op, move |s: &mut Shard, result, now_ms| {
            if let Some(c) = s.conn_mut(id) {
                c.in_flight = c.in_flight.saturating_sub(1);
            }
            then(s, result, now_ms);
        });
    }
}
