//! Rollback of a user's pixels in a time range: for every pixel the user painted in the range
//! and that nobody painted over since, restore the colour it had before the user's first
//! update in the range (0 when the journal holds nothing older). The restores are ordinary
//! paints through the tiles' home shards, so every client sees them as updates.

use std::collections::HashSet;

use pixelparty_engine::EngineHandle;
use pixelparty_storage::{AuditAction, StorageError, Store};

/// Most updates one rollback examines.
pub const MAX_ROLLBACK: usize = 1_000_000;

/// The restores a rollback would do: `(x, y, colour)`.
pub fn plan(store: &Store, user: u32, from_ms: u64, to_ms: u64) -> Result<Vec<(u16, u16, u8)>, StorageError> {
    let updates = store.user_pixels(user, from_ms, to_ms, MAX_ROLLBACK)?;
    let mut seen = HashSet::new();
    let mut restores = Vec::new();
    for first in &updates {
        if !seen.insert((first.x, first.y)) {
            continue; // Only the user's first update of a pixel in the range matters.
        }
        let Some(latest) = store.pixel_history(first.x, first.y, u64::MAX, 1)?.into_iter().next() else { continue };
        if latest.user != user || !(from_ms..to_ms).contains(&latest.time_ms) {
            continue; // Painted over since: leave it.
        }
        let before = store.pixel_history(first.x, first.y, first.seq, 1)?.into_iter().next();
        restores.push((first.x, first.y, before.map_or(0, |r| r.colour)));
    }
    Ok(restores)
}

/// Plans and applies a rollback as `actor`; returns how many pixels were restored.
pub fn run(
    store: &Store,
    engine: &EngineHandle,
    actor: u32,
    user: u32,
    from_ms: u64,
    to_ms: u64,
) -> Result<usize, StorageError> {
    let restores = plan(store, user, from_ms, to_ms)?;
    for &(x, y, colour) in &restores {
        engine.admin_paint(actor, x, y, colour);
    }
    let (n, now) = (restores.len(), pixelparty_engine::now_ms());
    store.run(move |tx| {
        tx.audit(actor, AuditAction::Rollback, &user.to_string(), &format!("{from_ms}..{to_ms}: {n} pixels"), now);
        Ok(())
    })?;
    Ok(restores.len())
}
