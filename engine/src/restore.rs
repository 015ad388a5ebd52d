//! Rollback restores: a compare-and-set at the tile's home shard.
//!
//! A rollback is planned from the store (for each pixel the user painted in the range and
//! nobody painted since: the colour from before, and the sequence of the user's last update
//! of it). The restores then go to the tiles' home shards, the only writers of those tiles,
//! which decide each one when they form a tick batch: a restore is applied only if no update
//! touched the pixel after that sequence, whether applied (the tile's ring), on its way to
//! the store (batches in flight) or earlier in the same batch. Whatever the shard cannot tell
//! (its ring has moved past the sequence) is skipped as uncertain, never guessed. Outcomes
//! are counted in a [`RestoreTally`] the caller waits on.
//!
//! A restored pixel is journaled under [`PixelRecord::ROLLBACK`] with the rolled-back user,
//! so the inspector shows "restored by rollback of X", not a paint by anyone.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use pixelparty_storage::PixelRecord;

use crate::msg::PaintCmd;
use crate::shard::Shard;

/// How a restore ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreOutcome {
    /// Applied and durable.
    Restored,
    /// The pixel changed after the rolled-back update: left as it is.
    PaintedOver,
    /// The home shard could not tell (too many updates of the tile since): left as it is.
    Uncertain,
    /// Not applied: the shard was busy or the store refused the batch.
    Refused,
    /// The store failed while writing it: it may or may not be applied.
    Unknown,
}

/// The outcomes of one round of restores, counted as the home shards decide them.
#[derive(Debug)]
pub struct RestoreTally {
    pending: AtomicUsize,
    restored: AtomicUsize,
    painted_over: AtomicUsize,
    uncertain: AtomicUsize,
    refused: AtomicUsize,
    unknown: AtomicUsize,
    done: Sender<()>,
}

/// What a round of restores did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Applied and durable.
    pub restored: usize,
    /// Changed since the rolled-back update: left alone.
    pub painted_over: usize,
    /// The home shard could not tell: left alone.
    pub uncertain: usize,
    /// Not applied (busy, store refused); worth another round.
    pub refused: usize,
    /// The store failed while writing them: they may or may not be applied.
    pub unknown: usize,
    /// Not decided before the deadline.
    pub unanswered: usize,
}

impl RestoreTally {
    /// A tally expecting `count` outcomes, and the receiver signalled when all are in.
    pub fn new(count: usize) -> (std::sync::Arc<Self>, Receiver<()>) {
        let (done, rx) = crossbeam_channel::bounded(1);
        let tally = Self {
            pending: AtomicUsize::new(count),
            restored: AtomicUsize::new(0),
            painted_over: AtomicUsize::new(0),
            uncertain: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
            unknown: AtomicUsize::new(0),
            done,
        };
        if count == 0 {
            let _ = tally.done.try_send(());
        }
        (std::sync::Arc::new(tally), rx)
    }

    /// Counts one outcome.
    pub(crate) fn resolve(&self, outcome: RestoreOutcome) {
        let counter = match outcome {
            RestoreOutcome::Restored => &self.restored,
            RestoreOutcome::PaintedOver => &self.painted_over,
            RestoreOutcome::Uncertain => &self.uncertain,
            RestoreOutcome::Refused => &self.refused,
            RestoreOutcome::Unknown => &self.unknown,
        };
        counter.fetch_add(1, Ordering::AcqRel);
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _ = self.done.try_send(());
        }
    }

    /// Waits (blocking: not for shard threads) until every outcome is in or `timeout` passes.
    pub fn wait(&self, done: &Receiver<()>, timeout: Duration) -> RestoreReport {
        let _ = done.recv_deadline(Instant::now() + timeout);
        RestoreReport {
            restored: self.restored.load(Ordering::Acquire),
            painted_over: self.painted_over.load(Ordering::Acquire),
            uncertain: self.uncertain.load(Ordering::Acquire),
            refused: self.refused.load(Ordering::Acquire),
            unknown: self.unknown.load(Ordering::Acquire),
            unanswered: self.pending.load(Ordering::Acquire),
        }
    }
}

/// The `user` field of a restore's journal record: the rolled-back user, flagged.
fn restore_user(rolled_back: u32) -> u32 {
    PixelRecord::ROLLBACK | rolled_back
}

/// The command restoring `(x, y)` to `colour` if it still holds `guard_seq`, for the tile's
/// home shard (`None` off the canvas), counted in `tally`.
pub(crate) fn restore_cmd(
    geometry: &pixelparty_protocol::Geometry,
    rolled_back: u32,
    (x, y, colour, guard_seq): (u16, u16, u8, u64),
    tally: &std::sync::Arc<RestoreTally>,
) -> Option<PaintCmd> {
    let loc = geometry.locate(u32::from(x), u32::from(y))?;
    Some(PaintCmd {
        origin: None,
        user: restore_user(rolled_back),
        x,
        y,
        colour,
        charged: false,
        cooldown_token: 0,
        restore: Some(crate::msg::Restoring { guard_seq, store_checked: None, tally: tally.clone() }),
        tile: loc.tile,
        offset: loc.offset,
        received_ms: 0,
    })
}

impl Shard {
    /// Restores arriving at the home shard: queued like paints (refused when the queue is
    /// full, and counted so), decided when the next batch forms.
    pub(crate) fn home_restore(&mut self, list: Vec<PaintCmd>) {
        for cmd in list {
            if self.tick.pending_paints() >= self.config().max_pending_paints {
                resolve(&cmd, RestoreOutcome::Refused);
                continue;
            }
            let Some(guard) = cmd.restore.as_ref().filter(|r| r.store_checked.is_none()).map(|r| r.guard_seq) else {
                self.tick.paints.push(cmd);
                continue;
            };
            let tile_seq = match self.tiles.get(&cmd.tile) {
                Some(t) if t.changed_since(cmd.offset, guard).is_none() => t.seq,
                _ => {
                    self.tick.paints.push(cmd);
                    continue;
                }
            };
            // The tile's ring no longer reaches back to the guard (e.g. after a restart): ask
            // the store whether the pixel still holds it, then queue the restore.
            let (x, y) = (cmd.x, cmd.y);
            self.ask(
                move |b| b.pixel_history(x, y, u64::MAX, 1),
                move |s: &mut Shard, latest, _now| {
                    let mut cmd = cmd;
                    match latest {
                        Ok(latest) if latest.first().is_some_and(|r| r.seq == guard) => {
                            if let Some(r) = cmd.restore.as_mut() {
                                r.store_checked = Some(tile_seq);
                            }
                            s.home_restore(vec![cmd]);
                        }
                        Ok(_) => resolve(&cmd, RestoreOutcome::PaintedOver),
                        // Not asked (too many at once): refused, so the next round plans it again.
                        Err(e) if e.is_overloaded() => resolve(&cmd, RestoreOutcome::Refused),
                        Err(e) => {
                            tracing::warn!(error = %e, "reading a pixel's history for a rollback");
                            resolve(&cmd, RestoreOutcome::Uncertain);
                        }
                    }
                },
            );
        }
    }

    /// Removes from `paints` (this tick's, in order) the restores that must not happen: the
    /// pixel changed after the guard earlier in this batch, in a batch on its way to the store
    /// (only a paint newer than the guard counts: the guard itself may still be on its way),
    /// or applied. Applied updates are judged by the tile's ring: from the guard, or, for a
    /// restore the store vouched for ([`Shard::home_restore`]), from when it was asked.
    pub(crate) fn decide_restores(&self, paints: &mut Vec<PaintCmd>) {
        if paints.iter().all(|c| c.restore.is_none()) {
            return;
        }
        let in_flight = self.tick.in_flight_latest();
        let mut seen: std::collections::HashSet<(u32, u16)> = std::collections::HashSet::new();
        paints.retain(|cmd| {
            let key = (cmd.tile, cmd.offset);
            let Some(r) = &cmd.restore else {
                seen.insert(key);
                return true;
            };
            let outcome = if seen.contains(&key) || in_flight.get(&key).is_some_and(|&s| s > r.guard_seq) {
                Some(RestoreOutcome::PaintedOver)
            } else {
                let since = r.store_checked.unwrap_or(r.guard_seq);
                match self.tiles.get(&cmd.tile).map(|t| t.changed_since(cmd.offset, since)) {
                    Some(Some(false)) => None,
                    Some(Some(true)) => Some(RestoreOutcome::PaintedOver),
                    Some(None) | None => Some(RestoreOutcome::Uncertain),
                }
            };
            match outcome {
                None => {
                    seen.insert(key);
                    true
                }
                Some(o) => {
                    r.tally.resolve(o);
                    false
                }
            }
        });
    }
}

/// Counts a restore's outcome (nothing for ordinary paints).
pub(crate) fn resolve(cmd: &PaintCmd, outcome: RestoreOutcome) {
    if let Some(r) = &cmd.restore {
        r.tally.resolve(outcome);
    }
}
