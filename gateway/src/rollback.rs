//! Rollback of a user's pixels in a time range: for every pixel the user painted in the range
//! and that nobody painted over since, restore the colour it had before the user's first
//! update in the range (0 when the journal holds nothing older).
//!
//! The plan is read from the store; each restore is then a compare-and-set at the tile's home
//! shard ([`pixelparty_engine::restore`]): applied only if the pixel still holds the
//! rolled-back user's last update, so a paint made meanwhile is never overwritten. The
//! restores are ordinary updates for every client, journaled as "restored by rollback of X".
//! Restores the shards refused (busy) or could not decide are planned again, up to
//! [`ROUNDS`] times; the report counts what really happened.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use pixelparty_engine::EngineHandle;
use pixelparty_storage::{AuditAction, AuditDraft, Backend, StorageError, Store};
use serde::Serialize;

/// Most updates one rollback examines.
pub const MAX_ROLLBACK: usize = 1_000_000;

/// Planning rounds: the first, then again for what the shards refused or could not decide.
pub const ROUNDS: usize = 3;

/// How long one round waits for the home shards' decisions.
const ROUND_TIMEOUT: Duration = Duration::from_secs(30);

/// One planned restore: `(x, y, colour before, sequence of the user's last update)`.
pub type Restore = (u16, u16, u8, u64);

/// What a rollback did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RollbackReport {
    /// Pixels the first plan found to restore.
    pub planned: usize,
    /// Pixels restored (durable).
    pub restored: usize,
    /// Pixels painted over after the plan (left as they are).
    pub painted_over: usize,
    /// Pixels not restored for another reason (busy shards, undecidable after every round).
    pub not_restored: usize,
    /// Restores the store failed while writing: they may or may not be applied (the server
    /// restarts after such a failure; the inspector then says).
    pub outcome_unknown: usize,
}

/// The restores a rollback would do now.
pub async fn plan(store: Arc<dyn Backend>, user: u32, from_ms: u64, to_ms: u64) -> Result<Vec<Restore>, StorageError> {
    let updates = store.user_pixels(user, from_ms, to_ms, MAX_ROLLBACK).await?;
    let mut seen = HashSet::new();
    let mut restores = Vec::new();
    for first in &updates {
        if !seen.insert((first.x, first.y)) {
            continue; // Only the user's first update of a pixel in the range matters.
        }
        let Some(latest) = store.pixel_history(first.x, first.y, u64::MAX, 1).await?.into_iter().next() else {
            continue;
        };
        if latest.painter() != Some(user) || !(from_ms..to_ms).contains(&latest.time_ms) {
            continue; // Painted over (or already restored) since: leave it.
        }
        let before = store.pixel_history(first.x, first.y, first.seq, 1).await?.into_iter().next();
        restores.push((first.x, first.y, before.map_or(0, |r| r.colour), latest.seq));
    }
    Ok(restores)
}

/// Plans and applies a rollback as `actor`, and records it in the audit log.
pub fn run(
    store: &Store,
    engine: &EngineHandle,
    actor: u32,
    user: u32,
    from_ms: u64,
    to_ms: u64,
) -> Result<RollbackReport, StorageError> {
    let report = apply(store, engine, user, |b| Box::pin(plan(b.clone(), user, from_ms, to_ms)))?;
    let detail = format!(
        "{from_ms}..{to_ms}: {} restored, {} painted over, {} not restored",
        report.restored, report.painted_over, report.not_restored
    );
    audit(store, actor, AuditAction::Rollback, user.to_string(), detail)?;
    Ok(report)
}

/// Records a rollback or a rewind in the audit log.
pub fn audit(
    store: &Store,
    actor: u32,
    action: AuditAction,
    target: String,
    detail: String,
) -> Result<(), StorageError> {
    let now = pixelparty_engine::now_ms();
    let entry = AuditDraft { actor, action, target, detail, time_ms: now };
    store.wait(move |b| b.audit(entry))
}

/// Applies the restores `plan` finds, journaled as restored by rollback of `rolled_back` (0:
/// a rewind of the canvas), in up to [`ROUNDS`] rounds: each round plans again what the
/// shards refused or could not decide.
pub fn apply(
    store: &Store,
    engine: &EngineHandle,
    rolled_back: u32,
    plan: impl Fn(&Arc<dyn Backend>) -> pixelparty_storage::Op<Vec<Restore>>,
) -> Result<RollbackReport, StorageError> {
    let mut report = RollbackReport::default();
    for round in 0..ROUNDS {
        let restores = store.wait(&plan)?;
        if round == 0 {
            report.planned = restores.len();
        }
        if restores.is_empty() {
            break;
        }
        let r = engine.restore(rolled_back, &restores, ROUND_TIMEOUT);
        report.restored += r.restored;
        report.painted_over += r.painted_over;
        report.outcome_unknown += r.unknown;
        if r.unknown > 0 || r.refused + r.uncertain + r.unanswered == 0 {
            break; // After a storage failure nothing more can be written.
        }
        // What was refused or undecided is planned again: the store (the pixel index reads
        // committed blocks at once) now holds what was restored and what was painted
        // meanwhile, so the next plan only has what is left.
    }
    report.not_restored = report.planned.saturating_sub(report.restored + report.painted_over + report.outcome_unknown);
    Ok(report)
}
