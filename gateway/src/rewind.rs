//! Rewinding the canvas, or a rectangle of it, to an earlier moment (after a griefing raid):
//! the canvas as it was then is rebuilt from the journal (`canvas_at`), compared with the
//! canvas now, and every pixel that differs gets its colour of then back.
//!
//! Live ([`run`]): each pixel is a compare-and-set restore at its home shard, like a
//! rollback's ([`crate::rollback::apply`]): written only if its newest update is still the one
//! the plan saw, and never over a paint made after the rewind began. Clients see ordinary
//! updates; the inspector shows them as restores. Offline ([`write_offline`], `pixelparty
//! restore --canvas-at`): the same differences are appended to a stopped store's journal.

use std::sync::Arc;

use pixelparty_engine::EngineHandle;
use pixelparty_protocol::Geometry;
use pixelparty_protocol::canvas::get_pixel;
use pixelparty_storage::{Backend, PixelRecord, RecoveredCanvas, StorageError, Store, TickWrite};
use serde::Deserialize;

use crate::rollback::{MAX_ROLLBACK, Restore, RollbackReport};

/// A rectangle of the canvas (clipped to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
pub struct Rect {
    /// Left column.
    pub x: u32,
    /// Top row.
    pub y: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Rect {
    /// The whole canvas.
    pub fn all(g: &Geometry) -> Self {
        Self { x: 0, y: 0, width: g.width(), height: g.height() }
    }

    fn clip(self, g: &Geometry) -> Option<(u32, u32, u32, u32)> {
        let (x1, y1) =
            (self.x.saturating_add(self.width).min(g.width()), self.y.saturating_add(self.height).min(g.height()));
        (self.x < x1 && self.y < y1).then_some((self.x, self.y, x1, y1))
    }
}

/// The pixels of `rect` whose colour differs between `now` and `then`: `(x, y, colour then)`.
/// Refused when there are more than `max`.
pub fn diff(
    g: &Geometry,
    now: &RecoveredCanvas,
    then: &RecoveredCanvas,
    rect: Rect,
    max: usize,
) -> Result<Vec<(u16, u16, u8)>, StorageError> {
    let Some((x0, y0, x1, y1)) = rect.clip(g) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for y in y0..y1 {
        for x in x0..x1 {
            let loc = g.locate(x, y).expect("inside the canvas");
            let t = loc.tile as usize;
            let (a, b) =
                (get_pixel(&now.tiles[t], g.bpp(), loc.offset), get_pixel(&then.tiles[t], g.bpp(), loc.offset));
            if a != b {
                if out.len() == max {
                    return Err(StorageError::invalid("more pixels differ than one rewind may restore"));
                }
                out.push((x as u16, y as u16, b));
            }
        }
    }
    Ok(out)
}

/// The restores that bring `rect` back to `at_ms` now, leaving every pixel whose newest
/// update is after `head` (painted after the rewind began, or already restored).
pub async fn plan(
    b: Arc<dyn Backend>,
    g: Geometry,
    at_ms: u64,
    rect: Rect,
    head: u64,
) -> Result<Vec<Restore>, StorageError> {
    let then = pixelparty_storage::canvas::canvas_at(&*b, g, at_ms).await?;
    let now = b.recover_canvas(g).await?;
    let mut restores = Vec::new();
    for (x, y, colour) in diff(&g, &now, &then, rect, MAX_ROLLBACK)? {
        let Some(latest) = b.pixel_history(x, y, u64::MAX, 1).await?.into_iter().next() else { continue };
        if latest.seq <= head {
            restores.push((x, y, colour, latest.seq));
        }
    }
    Ok(restores)
}

/// Rewinds `rect` of the live canvas to `at_ms` as `actor`, and records it in the audit log.
pub fn run(
    store: &Store,
    engine: &EngineHandle,
    actor: u32,
    at_ms: u64,
    rect: Option<Rect>,
) -> Result<RollbackReport, StorageError> {
    let g = store
        .wait(|b| b.canvas_geometry())?
        .ok_or_else(|| StorageError::unavailable("the canvas does not exist yet"))?;
    let rect = rect.unwrap_or(Rect::all(&g));
    let head = store.wait(|b| b.canvas_head())?;
    let report = crate::rollback::apply(store, engine, 0, |b| Box::pin(plan(b.clone(), g, at_ms, rect, head)))?;
    let detail = format!(
        "to {} ({at_ms}) of {}x{} at ({}, {}): {} restored, {} painted over, {} not restored",
        crate::backup::iso_time(at_ms),
        rect.width,
        rect.height,
        rect.x,
        rect.y,
        report.restored,
        report.painted_over,
        report.not_restored
    );
    crate::rollback::audit(store, actor, pixelparty_storage::AuditAction::Rewind, "canvas".into(), detail)?;
    Ok(report)
}

/// Appends to a stopped store's journal the updates that bring its canvas to `then` (journaled
/// as restores, at `now_ms`); the number of pixels changed.
pub async fn write_offline(
    b: &dyn Backend,
    g: Geometry,
    then: &RecoveredCanvas,
    now_ms: u64,
) -> Result<usize, StorageError> {
    /// Updates per committed batch.
    const BATCH: usize = 50_000;
    let now = b.recover_canvas(g).await?;
    let changes = diff(&g, &now, then, Rect::all(&g), usize::MAX)?;
    let mut seq = now.last_seq.max(b.last_journal_seq().await?);
    for chunk in changes.chunks(BATCH) {
        let pixels = chunk
            .iter()
            .map(|&(x, y, colour)| {
                seq += 1;
                PixelRecord { seq, x, y, colour, user: PixelRecord::ROLLBACK, time_ms: now_ms }
            })
            .collect();
        b.commit_tick(TickWrite { pixels, now_ms, ..TickWrite::default() }).await?;
    }
    b.flush().await?;
    Ok(changes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canvas(g: &Geometry, pixels: &[(u32, u32, u8)]) -> RecoveredCanvas {
        let mut tiles = vec![vec![0u8; g.tile_bytes()]; g.tile_count() as usize];
        for &(x, y, c) in pixels {
            let loc = g.locate(x, y).unwrap();
            pixelparty_protocol::canvas::set_pixel(&mut tiles[loc.tile as usize], g.bpp(), loc.offset, c);
        }
        let n = tiles.len();
        RecoveredCanvas { tiles, tile_seqs: vec![0; n], last_seq: 0, replayed: 0 }
    }

    #[test]
    fn diff_finds_exactly_the_changed_pixels_inside_the_rectangle() {
        let g = Geometry::new(40, 30, 4, 16).unwrap();
        let then = canvas(&g, &[(1, 1, 3), (20, 20, 5)]);
        let now = canvas(&g, &[(1, 1, 3), (20, 20, 7), (39, 29, 2), (5, 5, 1)]);
        let all = diff(&g, &now, &then, Rect::all(&g), 100).unwrap();
        assert_eq!(all, vec![(5, 5, 0), (20, 20, 5), (39, 29, 0)]);
        let part = diff(&g, &now, &then, Rect { x: 10, y: 10, width: 1000, height: 1000 }, 100).unwrap();
        assert_eq!(part, vec![(20, 20, 5), (39, 29, 0)]);
        assert!(diff(&g, &now, &then, Rect { x: 40, y: 0, width: 5, height: 5 }, 100).unwrap().is_empty());
        assert!(diff(&g, &now, &then, Rect::all(&g), 2).is_err(), "beyond the bound");
    }
}
