//! Rooms and messages in PostgreSQL (`rooms`, `room_messages`, `direct_messages`,
//! `conversations`), mirroring [`crate::chat`]: dense room ids under a lock, history pages
//! that examine at most `history_scan_max` messages, direct-message sequences assigned under
//! the pair's lock.

use deadpool_postgres::GenericClient;
use pixelparty_protocol::limits::MAX_ROOM_NAME_BYTES;
use tokio_postgres::Row;

use super::error::{below, col, limit, to_i64, u32_of, u64_of};
use super::sql::{Global, execute, lock, lock_pair, query, query_one, query_opt};
use crate::accounts::fold_name;
use crate::backend::Hidden;
use crate::chat::{check_room_name, check_text, conversation_pair};
use crate::error::{Result, StorageError};
use crate::records::{Conversation, Message, Room};

const ROOM_COLUMNS: &str = "id, name, created_by, created_ms";

fn room_of(row: &Row) -> Result<Room> {
    Ok(Room {
        id: u32_of(col(row, 0)?, "rooms")?,
        name: col(row, 1)?,
        created_by: u32_of(col(row, 2)?, "rooms")?,
        created_ms: u64_of(col(row, 3)?, "rooms")?,
    })
}

/// Columns seq, author, time, text, deleted.
fn message_of(row: &Row, table: &'static str) -> Result<Message> {
    Ok(Message {
        seq: u64_of(col(row, 0)?, table)?,
        author: u32_of(col(row, 1)?, table)?,
        time_ms: u64_of(col(row, 2)?, table)?,
        text: col(row, 3)?,
        deleted: col(row, 4)?,
    })
}

pub(crate) async fn room<C: GenericClient>(c: &C, id: u32) -> Result<Option<Room>> {
    let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE id = $1");
    query_opt(c, &sql, &[&i64::from(id)]).await?.as_ref().map(room_of).transpose()
}

/// The highest id (ids are dense and never reused), as the fjall backend.
pub(crate) async fn room_count<C: GenericClient>(c: &C) -> Result<u32> {
    let row = query_one(c, "SELECT coalesce(max(id), 0) FROM rooms", &[]).await?;
    u32_of(col(&row, 0)?, "rooms")
}

pub(crate) async fn room_by_name<C: GenericClient>(c: &C, name: String) -> Result<Option<Room>> {
    if name.is_empty() || name.len() > MAX_ROOM_NAME_BYTES {
        return Ok(None);
    }
    let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE folded = $1");
    query_opt(c, &sql, &[&fold_name(&name)]).await?.as_ref().map(room_of).transpose()
}

pub(crate) async fn rooms<C: GenericClient>(c: &C, after: u32, max: usize) -> Result<Vec<Room>> {
    let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE id >= $1 ORDER BY id LIMIT $2");
    let from = i64::from(after.saturating_add(1));
    query(c, &sql, &[&from, &limit(max)]).await?.iter().map(room_of).collect()
}

pub(crate) async fn room_last_seq<C: GenericClient>(c: &C, room: u32) -> Result<u64> {
    let row =
        query_one(c, "SELECT coalesce(max(seq), 0) FROM room_messages WHERE room = $1", &[&i64::from(room)]).await?;
    u64_of(col(&row, 0)?, "room_messages")
}

/// The messages of `room` with `from <= seq < to` (at most [`crate::backend::MAX_RANGE`]),
/// deleted ones included, ascending.
pub(crate) async fn room_range<C: GenericClient>(c: &C, room: u32, from: u64, to: u64) -> Result<Vec<Message>> {
    let to = to.min(from.saturating_add(crate::backend::MAX_RANGE));
    let (Ok(from), Ok(to)) = (i64::try_from(from), i64::try_from(to)) else { return Ok(Vec::new()) };
    let sql = "SELECT seq, author, time_ms, text, deleted FROM room_messages
               WHERE room = $1 AND seq >= $2 AND seq < $3 ORDER BY seq";
    query(c, sql, &[&i64::from(room), &from, &to]).await?.iter().map(|r| message_of(r, "room_messages")).collect()
}

/// The direct messages of the pair `{a, b}` with `from <= seq < to` (at most
/// [`crate::backend::MAX_RANGE`]), deleted ones included, ascending.
pub(crate) async fn direct_range<C: GenericClient>(c: &C, a: u32, b: u32, from: u64, to: u64) -> Result<Vec<Message>> {
    let (lo, hi) = conversation_pair(a, b);
    let to = to.min(from.saturating_add(crate::backend::MAX_RANGE));
    let (Ok(from), Ok(to)) = (i64::try_from(from), i64::try_from(to)) else { return Ok(Vec::new()) };
    let sql = "SELECT seq, author, time_ms, text, deleted FROM direct_messages
               WHERE lo = $1 AND hi = $2 AND seq >= $3 AND seq < $4 ORDER BY seq";
    query(c, sql, &[&i64::from(lo), &i64::from(hi), &from, &to])
        .await?
        .iter()
        .map(|r| message_of(r, "direct_messages"))
        .collect()
}

pub(crate) async fn room_message<C: GenericClient>(c: &C, room: u32, seq: u64) -> Result<Option<Message>> {
    let Ok(seq) = i64::try_from(seq) else { return Ok(None) };
    let sql = "SELECT seq, author, time_ms, text, deleted FROM room_messages WHERE room = $1 AND seq = $2";
    query_opt(c, sql, &[&i64::from(room), &seq]).await?.map(|r| message_of(&r, "room_messages")).transpose()
}

/// One history page: the newest `scan` messages below `before`, then those shown, oldest
/// first (what the fjall backend's bounded reverse scan yields).
pub(crate) async fn room_history<C: GenericClient>(
    c: &C,
    room: u32,
    before: u64,
    max: usize,
    hidden: Hidden,
    scan: usize,
) -> Result<Vec<Message>> {
    let Some(last) = below(before) else { return Ok(Vec::new()) };
    let hidden: Vec<i64> = hidden.iter().map(|&u| i64::from(u)).collect();
    let sql = "SELECT seq, author, time_ms, text, deleted FROM (
                   SELECT seq, author, time_ms, text, deleted FROM room_messages
                   WHERE room = $1 AND seq <= $2 ORDER BY seq DESC LIMIT $3
               ) page WHERE NOT deleted AND author <> ALL($4) ORDER BY seq DESC LIMIT $5";
    let rows = query(c, sql, &[&i64::from(room), &last, &limit(scan), &hidden, &limit(max)]).await?;
    let mut page = rows.iter().map(|r| message_of(r, "room_messages")).collect::<Result<Vec<_>>>()?;
    page.reverse();
    Ok(page)
}

pub(crate) async fn direct_last_seq<C: GenericClient>(c: &C, a: u32, b: u32) -> Result<u64> {
    let (lo, hi) = conversation_pair(a, b);
    let sql = "SELECT coalesce(max(seq), 0) FROM direct_messages WHERE lo = $1 AND hi = $2";
    let row = query_one(c, sql, &[&i64::from(lo), &i64::from(hi)]).await?;
    u64_of(col(&row, 0)?, "direct_messages")
}

pub(crate) async fn direct_message<C: GenericClient>(c: &C, a: u32, b: u32, seq: u64) -> Result<Option<Message>> {
    let Ok(seq) = i64::try_from(seq) else { return Ok(None) };
    let (lo, hi) = conversation_pair(a, b);
    let sql = "SELECT seq, author, time_ms, text, deleted FROM direct_messages WHERE lo = $1 AND hi = $2 AND seq = $3";
    query_opt(c, sql, &[&i64::from(lo), &i64::from(hi), &seq])
        .await?
        .map(|r| message_of(&r, "direct_messages"))
        .transpose()
}

/// Like [`room_history`] for the conversation between `a` and `b`.
pub(crate) async fn direct_history<C: GenericClient>(
    c: &C,
    a: u32,
    b: u32,
    before: u64,
    max: usize,
    hidden: Hidden,
    scan: usize,
) -> Result<Vec<Message>> {
    let Some(last) = below(before) else { return Ok(Vec::new()) };
    let (lo, hi) = conversation_pair(a, b);
    let hidden: Vec<i64> = hidden.iter().map(|&u| i64::from(u)).collect();
    let sql = "SELECT seq, author, time_ms, text, deleted FROM (
                   SELECT seq, author, time_ms, text, deleted FROM direct_messages
                   WHERE lo = $1 AND hi = $2 AND seq <= $3 ORDER BY seq DESC LIMIT $4
               ) page WHERE NOT deleted AND author <> ALL($5) ORDER BY seq DESC LIMIT $6";
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
        [&i64::from(lo), &i64::from(hi), &last, &limit(scan), &hidden, &limit(max)];
    let rows = query(c, sql, &params).await?;
    let mut page = rows.iter().map(|r| message_of(r, "direct_messages")).collect::<Result<Vec<_>>>()?;
    page.reverse();
    Ok(page)
}

/// The most recent of the first `4 × limit` conversations by peer id, as the fjall backend
/// picks them.
pub(crate) async fn conversations<C: GenericClient>(c: &C, user: u32, max: usize) -> Result<Vec<Conversation>> {
    let scan = max.saturating_mul(4).max(max);
    let sql = "SELECT peer, last_seq, last_ms FROM (
                   SELECT peer, last_seq, last_ms FROM conversations WHERE user_id = $1 ORDER BY peer LIMIT $2
               ) first ORDER BY last_ms DESC, peer LIMIT $3";
    query(c, sql, &[&i64::from(user), &limit(scan), &limit(max)])
        .await?
        .iter()
        .map(|row| {
            Ok(Conversation {
                peer: u32_of(col(row, 0)?, "conversations")?,
                last_seq: u64_of(col(row, 1)?, "conversations")?,
                last_ms: u64_of(col(row, 2)?, "conversations")?,
            })
        })
        .collect()
}

pub(crate) async fn create_room<C: GenericClient>(c: &C, name: String, created_by: u32, now_ms: u64) -> Result<Room> {
    let name = check_room_name(&name)?;
    let created = to_i64(now_ms, "time")?;
    lock(c, Global::Rooms).await?;
    let folded = fold_name(name);
    if query_opt(c, "SELECT 1 FROM rooms WHERE folded = $1", &[&folded]).await?.is_some() {
        return Err(StorageError::conflict("room name"));
    }
    let id = room_count(c).await?.checked_add(1).ok_or_else(|| StorageError::conflict("no more room ids"))?;
    let sql = "INSERT INTO rooms (id, name, folded, created_by, created_ms) VALUES ($1, $2, $3, $4, $5)";
    execute(c, sql, &[&i64::from(id), &name, &folded, &i64::from(created_by), &created]).await?;
    Ok(Room { id, name: name.to_owned(), created_by, created_ms: now_ms })
}

/// Appends messages to a room under the sequences they carry; a sequence already stored is
/// overwritten (as the fjall backend's put).
pub(crate) async fn append_room_messages<C: GenericClient>(c: &C, room: u32, messages: &[Message]) -> Result<()> {
    // One statement per room; within it a later message of the same sequence wins, as it
    // would overwrite the earlier one.
    let mut latest: std::collections::BTreeMap<u64, &Message> = std::collections::BTreeMap::new();
    for m in messages {
        latest.insert(m.seq, m);
    }
    let (mut seqs, mut authors, mut times, mut texts, mut deleted) = (vec![], vec![], vec![], vec![], vec![]);
    for m in latest.values() {
        seqs.push(to_i64(m.seq, "message sequence")?);
        authors.push(i64::from(m.author));
        times.push(to_i64(m.time_ms, "time")?);
        texts.push(m.text.as_str());
        deleted.push(m.deleted);
    }
    let sql = "INSERT INTO room_messages (room, seq, author, time_ms, text, deleted)
               SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::boolean[])
               ON CONFLICT (room, seq) DO UPDATE SET author = excluded.author, time_ms = excluded.time_ms,
               text = excluded.text, deleted = excluded.deleted";
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
        [&i64::from(room), &seqs, &authors, &times, &texts, &deleted];
    execute(c, sql, &params).await.map(drop)
}

/// Tombstones a room message; returns it as it was, `None` when there is none.
pub(crate) async fn delete_room_message<C: GenericClient>(c: &C, room: u32, seq: u64) -> Result<Option<Message>> {
    let Ok(seq) = i64::try_from(seq) else { return Ok(None) };
    let sql = "UPDATE room_messages m SET text = '', deleted = true FROM room_messages old
               WHERE m.room = $1 AND m.seq = $2 AND old.room = m.room AND old.seq = m.seq
               RETURNING old.seq, old.author, old.time_ms, old.text, old.deleted";
    query_opt(c, sql, &[&i64::from(room), &seq]).await?.map(|r| message_of(&r, "room_messages")).transpose()
}

pub(crate) async fn append_direct<C: GenericClient>(
    c: &C,
    from: u32,
    to: u32,
    now_ms: u64,
    text: String,
) -> Result<Message> {
    check_text(&text)?;
    let now = to_i64(now_ms, "time")?;
    let (lo, hi) = conversation_pair(from, to);
    lock_pair(c, from, to).await?;
    let seq = direct_last_seq(c, from, to).await? + 1;
    let sql = "INSERT INTO direct_messages (lo, hi, seq, author, time_ms, text, deleted)
               VALUES ($1, $2, $3, $4, $5, $6, false)";
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
        [&i64::from(lo), &i64::from(hi), &to_i64(seq, "message sequence")?, &i64::from(from), &now, &text];
    execute(c, sql, &params).await?;
    let summary = "INSERT INTO conversations (user_id, peer, last_seq, last_ms) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (user_id, peer) DO UPDATE SET last_seq = excluded.last_seq, last_ms = excluded.last_ms";
    let seq_i = to_i64(seq, "message sequence")?;
    execute(c, summary, &[&i64::from(from), &i64::from(to), &seq_i, &now]).await?;
    execute(c, summary, &[&i64::from(to), &i64::from(from), &seq_i, &now]).await?;
    Ok(Message { seq, author: from, time_ms: now_ms, text, deleted: false })
}

pub(crate) async fn delete_direct<C: GenericClient>(c: &C, a: u32, b: u32, seq: u64) -> Result<Message> {
    let missing = || StorageError::not_found("message");
    let seq = i64::try_from(seq).map_err(|_| missing())?;
    let (lo, hi) = conversation_pair(a, b);
    let sql = "UPDATE direct_messages m SET text = '', deleted = true FROM direct_messages old
               WHERE m.lo = $1 AND m.hi = $2 AND m.seq = $3 AND old.lo = m.lo AND old.hi = m.hi AND old.seq = m.seq
               RETURNING old.seq, old.author, old.time_ms, old.text, old.deleted";
    let row = query_opt(c, sql, &[&i64::from(lo), &i64::from(hi), &seq]).await?.ok_or_else(missing)?;
    message_of(&row, "direct_messages")
}
