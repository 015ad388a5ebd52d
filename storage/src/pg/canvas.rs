//! The canvas in PostgreSQL (`canvas`, `journal`, `tiles`), mirroring [`crate::canvas`]:
//! one journal row per accepted update (written by binary COPY in [`commit_tick`]), tile
//! snapshots, recovery through the shared [`Replay`], the inspector and rollback queries, and
//! pruning of what every snapshot covers.

use deadpool_postgres::GenericClient;
use pixelparty_protocol::Geometry;
use tokio_postgres::Row;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use super::error::{below, col, limit, statement, to_i64, u8_of, u16_of, u32_of, u64_of};
use super::sql::{Global, execute, lock, query, query_one, query_opt};
use crate::RecoveredCanvas;
use crate::backend::{AuditDraft, Sequenced, TickWrite};
use crate::canvas::{Replay, TileSnapshot};
use crate::error::{Result, StorageError};
use crate::records::{AuditAction, PixelRecord};

/// Journal rows one recovery query reads (the journal is streamed in pages of this many).
pub(crate) const RECOVER_PAGE: usize = 100_000;

/// Journal rows one pruning query reads.
const PRUNE_PAGE: usize = 10_000;

/// Tile snapshots one query reads.
const TILE_PAGE: usize = 256;

const PIXEL_COLUMNS: &str = "seq, x, y, colour, user_id, time_ms";

fn pixel_of(row: &Row) -> Result<PixelRecord> {
    Ok(PixelRecord {
        seq: u64_of(col(row, 0)?, "journal")?,
        x: u16_of(col(row, 1)?, "journal")?,
        y: u16_of(col(row, 2)?, "journal")?,
        colour: u8_of(col(row, 3)?, "journal")?,
        user: u32_of(col(row, 4)?, "journal")?,
        time_ms: u64_of(col(row, 5)?, "journal")?,
    })
}

fn pixels_of(rows: &[Row]) -> Result<Vec<PixelRecord>> {
    rows.iter().map(pixel_of).collect()
}

pub(crate) async fn canvas_geometry<C: GenericClient>(c: &C) -> Result<Option<Geometry>> {
    let Some(row) = query_opt(c, "SELECT width, height, bpp, tile_size FROM canvas", &[]).await? else {
        return Ok(None);
    };
    let bad = || StorageError::corrupt("canvas", "bad canvas geometry");
    let width = u32::try_from(col::<i64>(&row, 0)?).map_err(|_| bad())?;
    let height = u32::try_from(col::<i64>(&row, 1)?).map_err(|_| bad())?;
    let bpp = u8::try_from(col::<i16>(&row, 2)?).map_err(|_| bad())?;
    let tile_size = u16::try_from(col::<i32>(&row, 3)?).map_err(|_| bad())?;
    Geometry::new(width, height, bpp, tile_size).map(Some).map_err(|_| bad())
}

pub(crate) async fn init_canvas<C: GenericClient>(c: &C, geometry: Geometry) -> Result<()> {
    lock(c, Global::Canvas).await?;
    match canvas_geometry(c).await? {
        Some(g) if g == geometry => Ok(()),
        Some(_) => Err(StorageError::conflict("canvas geometry differs from the stored one")),
        None => {
            let sql = "INSERT INTO canvas (width, height, bpp, tile_size) VALUES ($1, $2, $3, $4)";
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [
                &i64::from(geometry.width()),
                &i64::from(geometry.height()),
                &i16::from(geometry.bpp()),
                &i32::from(geometry.tile_size()),
            ];
            execute(c, sql, &params).await.map(drop)
        }
    }
}

pub(crate) async fn journal_entry<C: GenericClient>(c: &C, seq: u64) -> Result<Option<PixelRecord>> {
    let Ok(seq) = i64::try_from(seq) else { return Ok(None) };
    let sql = format!("SELECT {PIXEL_COLUMNS} FROM journal WHERE seq = $1");
    query_opt(c, &sql, &[&seq]).await?.as_ref().map(pixel_of).transpose()
}

pub(crate) async fn last_journal_seq<C: GenericClient>(c: &C) -> Result<u64> {
    let row = query_one(c, "SELECT coalesce(max(seq), 0) FROM journal", &[]).await?;
    u64_of(col(&row, 0)?, "journal")
}

/// The highest sequence ever assigned: the journal's newest row, or, once pruning took every
/// row, the newest tile snapshot (which covers what was pruned), so it never goes back.
pub(crate) async fn canvas_head<C: GenericClient>(c: &C) -> Result<u64> {
    let sql = "SELECT greatest((SELECT coalesce(max(seq), 0) FROM journal), (SELECT coalesce(max(seq), 0) FROM tiles))";
    let row = query_one(c, sql, &[]).await?;
    u64_of(col(&row, 0)?, "journal")
}

pub(crate) async fn journal_after<C: GenericClient>(c: &C, after: u64, max: usize) -> Result<Vec<PixelRecord>> {
    let Ok(after) = i64::try_from(after) else { return Ok(Vec::new()) };
    let sql = format!("SELECT {PIXEL_COLUMNS} FROM journal WHERE seq > $1 ORDER BY seq LIMIT $2");
    pixels_of(&query(c, &sql, &[&after, &limit(max)]).await?)
}

pub(crate) async fn tile_snapshots<C: GenericClient>(c: &C) -> Result<Vec<TileSnapshot>> {
    let sql = "SELECT tile, seq, data FROM tiles WHERE tile > $1 ORDER BY tile LIMIT $2";
    let mut out = Vec::new();
    let mut after = -1i64;
    loop {
        let rows = query(c, sql, &[&after, &limit(TILE_PAGE)]).await?;
        for row in &rows {
            let tile: i64 = col(row, 0)?;
            after = tile;
            out.push(TileSnapshot {
                tile: u32_of(tile, "tiles")?,
                seq: u64_of(col(row, 1)?, "tiles")?,
                data: col(row, 2)?,
            });
        }
        if rows.len() < TILE_PAGE {
            return Ok(out);
        }
    }
}

pub(crate) async fn tile_snapshot_seqs<C: GenericClient>(c: &C) -> Result<Vec<(u32, u64)>> {
    let sql = "SELECT tile, seq FROM tiles WHERE tile > $1 ORDER BY tile LIMIT $2";
    let page = TILE_PAGE * 64;
    let mut out = Vec::new();
    let mut after = -1i64;
    loop {
        let rows = query(c, sql, &[&after, &limit(page)]).await?;
        for row in &rows {
            let tile: i64 = col(row, 0)?;
            after = tile;
            out.push((u32_of(tile, "tiles")?, u64_of(col(row, 1)?, "tiles")?));
        }
        if rows.len() < page {
            return Ok(out);
        }
    }
}

/// Recovery: the snapshots, then the journal after the oldest of them in pages of
/// [`RECOVER_PAGE`] rows (run inside one repeatable-read transaction, so the pages agree).
pub(crate) async fn recover_canvas<C: GenericClient>(c: &C, geometry: Geometry) -> Result<RecoveredCanvas> {
    let mut replay = Replay::new(&geometry, tile_snapshots(c).await?)?;
    let sql = format!("SELECT {PIXEL_COLUMNS} FROM journal WHERE seq >= $1 ORDER BY seq LIMIT $2");
    let Ok(mut from) = i64::try_from(replay.first_needed_seq()) else { return Ok(replay.finish()) };
    loop {
        let page = pixels_of(&query(c, &sql, &[&from, &limit(RECOVER_PAGE)]).await?)?;
        replay.apply(&page)?;
        match page.last() {
            Some(last) if page.len() == RECOVER_PAGE => from = to_i64(last.seq, "journal sequence")? + 1,
            _ => return Ok(replay.finish()),
        }
    }
}

pub(crate) async fn user_pixels<C: GenericClient>(
    c: &C,
    user: u32,
    from_ms: u64,
    to_ms: u64,
    max: usize,
) -> Result<Vec<PixelRecord>> {
    // Stored times are at most i64::MAX: a bound past it includes them all.
    let Ok(from) = i64::try_from(from_ms) else { return Ok(Vec::new()) };
    let to = i64::try_from(to_ms).ok();
    let sql = format!(
        "SELECT {PIXEL_COLUMNS} FROM journal WHERE user_id = $1 AND time_ms >= $2 AND ($3::bigint IS NULL OR time_ms < $3)
         ORDER BY seq LIMIT $4"
    );
    pixels_of(&query(c, &sql, &[&i64::from(user), &from, &to, &limit(max)]).await?)
}

pub(crate) async fn pixel_history<C: GenericClient>(
    c: &C,
    x: u16,
    y: u16,
    before: u64,
    max: usize,
) -> Result<Vec<PixelRecord>> {
    let Some(last) = below(before) else { return Ok(Vec::new()) };
    let sql =
        format!("SELECT {PIXEL_COLUMNS} FROM journal WHERE x = $1 AND y = $2 AND seq <= $3 ORDER BY seq DESC LIMIT $4");
    pixels_of(&query(c, &sql, &[&i32::from(x), &i32::from(y), &last, &limit(max)]).await?)
}

pub(crate) async fn save_tiles<C: GenericClient>(c: &C, snapshots: Vec<TileSnapshot>) -> Result<()> {
    // A later snapshot of the same tile replaces an earlier one, as the fjall backend's put.
    let mut latest = std::collections::BTreeMap::new();
    for s in &snapshots {
        latest.insert(s.tile, s);
    }
    let mut tiles = Vec::with_capacity(latest.len());
    let mut seqs = Vec::with_capacity(latest.len());
    let mut data = Vec::with_capacity(latest.len());
    for s in latest.values() {
        tiles.push(i64::from(s.tile));
        seqs.push(to_i64(s.seq, "tile sequence")?);
        data.push(s.data.as_slice());
    }
    if tiles.is_empty() {
        return Ok(());
    }
    let sql = "INSERT INTO tiles (tile, seq, data) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[])
               ON CONFLICT (tile) DO UPDATE SET seq = excluded.seq, data = excluded.data
               WHERE tiles.seq <= excluded.seq";
    execute(c, sql, &[&tiles, &seqs, &data]).await.map(drop)
}

/// Deletes the longest run of the oldest journal rows, at most `max`, that are older than
/// `before_ms` and each covered by its own tile's snapshot (as the fjall backend does per
/// block). A tile without a snapshot covers nothing.
pub(crate) async fn prune_journal<C: GenericClient>(
    c: &C,
    geometry: Geometry,
    before_ms: u64,
    max: usize,
) -> Result<usize> {
    let mut covered = vec![0u64; geometry.tile_count() as usize];
    for (tile, seq) in tile_snapshot_seqs(c).await? {
        if let Some(slot) = covered.get_mut(tile as usize) {
            *slot = seq;
        }
    }
    let is_covered = |r: &PixelRecord| {
        geometry
            .locate(u32::from(r.x), u32::from(r.y))
            .is_some_and(|l| covered.get(l.tile as usize).is_some_and(|&c| c >= r.seq))
    };
    let sql = format!("SELECT {PIXEL_COLUMNS} FROM journal WHERE seq > $1 ORDER BY seq LIMIT $2");
    let (mut after, mut doomed) = (-1i64, 0usize);
    while doomed < max {
        let want = (max - doomed).min(PRUNE_PAGE);
        let page = pixels_of(&query(c, &sql, &[&after, &limit(want)]).await?)?;
        let run = page.iter().take_while(|r| r.time_ms < before_ms && is_covered(r)).count();
        // Exactly the rows examined: another tick may commit a lower sequence meanwhile (the
        // engine's shards journal concurrently), and it is not covered yet.
        let seqs = page[..run].iter().map(|r| to_i64(r.seq, "journal sequence")).collect::<Result<Vec<_>>>()?;
        if !seqs.is_empty() {
            execute(c, "DELETE FROM journal WHERE seq = ANY($1)", &[&seqs]).await?;
        }
        doomed += run;
        match seqs.last() {
            Some(&last) if run == want => after = last,
            _ => break,
        }
    }
    Ok(doomed)
}

/// One tick in the caller's transaction: the pixels by binary COPY, the room messages, then
/// the deletions (a missing message is skipped; an administrator's is audited).
pub(crate) async fn commit_tick(tx: &deadpool_postgres::Transaction<'_>, tick: TickWrite) -> Result<()> {
    if tick.pixels.windows(2).any(|w| w[1].seq <= w[0].seq) {
        return Err(StorageError::invalid("journal block sequences must ascend"));
    }
    if !tick.pixels.is_empty() {
        copy_pixels(tx, &tick.pixels).await?;
    }
    for (room, messages) in &tick.messages {
        super::chat::append_room_messages(tx, *room, messages).await?;
    }
    for d in &tick.deletes {
        let Some(m) = super::chat::delete_room_message(tx, d.room, d.seq).await? else { continue };
        if d.by_admin {
            let entry = AuditDraft {
                actor: 0,
                action: AuditAction::DeleteMessage,
                target: format!("room {} seq {}", d.room, d.seq),
                detail: format!("author {}", m.author),
                time_ms: tick.now_ms,
            };
            super::moderation::audit(tx, &entry).await?;
        }
    }
    Ok(())
}

/// [`commit_tick`] with the sequences assigned here (see [`crate::Backend::commit_tick_ordered`]):
/// the canvas lock, then each room's lock in ascending order (one order, so no deadlock), each
/// held until commit, so that sequences become visible in the order they are taken.
pub(crate) async fn commit_tick_ordered(
    tx: &deadpool_postgres::Transaction<'_>,
    mut tick: TickWrite,
) -> Result<Sequenced> {
    let mut out = Sequenced::default();
    if !tick.pixels.is_empty() {
        lock(tx, Global::CanvasSeq).await?;
        out.dropped = check_guards(tx, &tick.pixels, &tick.guards).await?;
        if !out.dropped.is_empty() {
            let mut index = 0u32;
            tick.pixels.retain(|_| {
                let keep = out.dropped.binary_search(&index).is_err();
                index += 1;
                keep
            });
        }
        let first = canvas_head(tx).await? + 1;
        for (p, seq) in tick.pixels.iter_mut().zip(first..) {
            p.seq = seq;
        }
        out.first_pixel = first;
    }
    let mut rooms: Vec<u32> = tick.messages.iter().map(|(room, _)| *room).collect();
    rooms.sort_unstable();
    rooms.dedup();
    let mut next = std::collections::HashMap::with_capacity(rooms.len());
    for room in rooms {
        super::sql::lock_room(tx, room).await?;
        next.insert(room, super::chat::room_last_seq(tx, room).await? + 1);
    }
    for (room, messages) in &mut tick.messages {
        let Some(n) = next.get_mut(room) else { continue };
        out.rooms.push((*room, *n));
        for m in messages.iter_mut() {
            m.seq = *n;
            *n += 1;
        }
    }
    let (controls, now_ms) = (std::mem::take(&mut tick.controls), tick.now_ms);
    commit_tick(tx, tick).await?;
    for (node, event) in controls {
        out.controls.push(super::control::append(tx, node, &event, now_ms).await?);
    }
    Ok(out)
}

/// The guarded pixels (rollback restores) whose place changed since their guard, by index
/// (ascending): a newer journaled update of the place, or an earlier pixel of the same tick
/// at it that is kept. One query for every guarded place (the pixel index answers each).
async fn check_guards(
    tx: &deadpool_postgres::Transaction<'_>,
    pixels: &[PixelRecord],
    guards: &[(u32, u64)],
) -> Result<Vec<u32>> {
    use std::collections::{HashMap, HashSet};
    if guards.is_empty() {
        return Ok(Vec::new());
    }
    let guard_of: HashMap<u32, u64> = guards.iter().copied().collect();
    let places: Vec<(u16, u16)> =
        guards.iter().filter_map(|(i, _)| pixels.get(*i as usize)).map(|p| (p.x, p.y)).collect();
    let xs: Vec<i32> = places.iter().map(|(x, _)| i32::from(*x)).collect();
    let ys: Vec<i32> = places.iter().map(|(_, y)| i32::from(*y)).collect();
    let sql = "SELECT p.x, p.y, (SELECT coalesce(max(seq), 0) FROM journal j WHERE j.x = p.x AND j.y = p.y)
               FROM unnest($1::int[], $2::int[]) AS p(x, y)";
    let mut newest: HashMap<(u16, u16), u64> = HashMap::with_capacity(places.len());
    for row in query(tx, sql, &[&xs, &ys]).await? {
        let place = (u16_of(col(&row, 0)?, "journal")?, u16_of(col(&row, 1)?, "journal")?);
        newest.insert(place, u64_of(col(&row, 2)?, "journal")?);
    }
    let (mut dropped, mut kept) = (Vec::new(), HashSet::new());
    for (i, p) in pixels.iter().enumerate() {
        let place = (p.x, p.y);
        if let Some(&guard) = guard_of.get(&(i as u32))
            && (kept.contains(&place) || newest.get(&place).copied().unwrap_or(0) != guard)
        {
            dropped.push(i as u32);
            continue;
        }
        kept.insert(place);
    }
    Ok(dropped)
}

async fn copy_pixels(tx: &deadpool_postgres::Transaction<'_>, pixels: &[PixelRecord]) -> Result<()> {
    let sink =
        tx.copy_in("COPY journal (seq, x, y, colour, user_id, time_ms) FROM STDIN BINARY").await.map_err(statement)?;
    let writer =
        BinaryCopyInWriter::new(sink, &[Type::INT8, Type::INT4, Type::INT4, Type::INT2, Type::INT8, Type::INT8]);
    let mut writer = std::pin::pin!(writer);
    for p in pixels {
        let row: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
            &to_i64(p.seq, "journal sequence")?,
            &i32::from(p.x),
            &i32::from(p.y),
            &i16::from(p.colour),
            &i64::from(p.user),
            &to_i64(p.time_ms, "time")?,
        ];
        writer.as_mut().write(&row).await.map_err(statement)?;
    }
    writer.finish().await.map_err(statement)?;
    Ok(())
}
