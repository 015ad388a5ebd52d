//! Copying a whole store into an empty one, from either backend to either backend (fjall to
//! PostgreSQL and back): the data migration behind `pixelparty migrate`.
//!
//! It works only through [`Backend`] operations and keeps every id and sequence as it was
//! (user and room ids, room and direct-message sequences, journal sequences), checking each
//! one the target assigns rather than trusting it. Deleted messages are copied as deleted.
//! Moderation state is written the way it came to be: a ban is replayed at the point of the
//! audit log that recorded it, so the audit log comes out entry for entry as it was.
//!
//! What it does not copy: login sessions (no operation lists them: users log in again), and
//! gaps in the audit log's ids (entries keep their order and content; ids are dense again).
//! It is not an online tool: nothing may write to either store while it runs (server
//! stopped). It is not incremental either: the target must be empty, and a failed copy is
//! started again into a fresh target.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use ipnet::IpNet;

use crate::backend::{AuditDraft, Backend, Hidden, Op, TickWrite};
use crate::error::{Result, StorageError};
use crate::records::{AuditAction, AuditEntry, Ban, Message, PixelRecord};
use crate::social::FriendOutcome;

/// Users, rooms and audit entries read per page; room messages read and written per batch.
const PAGE: usize = 1000;
/// Journal entries read per page, and most entries of one written journal block.
const JOURNAL_PAGE: usize = 10_000;
/// Widest time span of one written journal block. The fjall backend finds where a time range
/// starts by the first record of each block (its time index), so a wide block would hide its
/// later records from `user_pixels` (rollback); the engine writes one block per tick, about
/// this wide.
const BLOCK_SPAN_MS: u64 = 5;
/// Most relations of one kind, and most conversations, of one user (one more is asked for, to
/// tell a full list from a cut one).
const PER_USER_MAX: usize = 100_000;
/// Most user bans.
const USER_BANS_MAX: usize = 1_000_000;
/// Tile snapshots written per call.
const TILE_BATCH: usize = 256;
/// The text a deleted direct message is appended with before it is deleted again (a message
/// cannot be appended empty; deleting clears it).
const DELETED_TEXT: &str = "(deleted)";

/// What a store holds, compared between source and target after a copy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Users (the highest id: ids are dense).
    pub users: u32,
    /// Rooms (the highest id).
    pub rooms: u32,
    /// Room message slots, deleted ones included (each room's last sequence, summed).
    pub room_messages: u64,
    /// Direct message slots (each conversation's last sequence, summed).
    pub direct_messages: u64,
    /// User bans and address bans.
    pub bans: u64,
    /// Audit log entries.
    pub audit_entries: u64,
    /// Canvas journal entries.
    pub journal_entries: u64,
    /// FNV-1a (64 bit) of every journal entry, in sequence order.
    pub journal_checksum: u64,
    /// Tile snapshots.
    pub tiles: u64,
    /// FNV-1a (64 bit) of the recovered canvas: its geometry, every tile's pixels and
    /// sequence, and the last sequence (0 without a canvas).
    pub canvas_checksum: u64,
}

impl Counts {
    /// What differs from `other`, first in field order (`None`: nothing).
    pub fn first_difference(&self, other: &Self) -> Option<&'static str> {
        let fields = [
            ("copy check failed: the user count differs", u64::from(self.users), u64::from(other.users)),
            ("copy check failed: the room count differs", u64::from(self.rooms), u64::from(other.rooms)),
            ("copy check failed: the room message count differs", self.room_messages, other.room_messages),
            ("copy check failed: the direct message count differs", self.direct_messages, other.direct_messages),
            ("copy check failed: the ban count differs", self.bans, other.bans),
            ("copy check failed: the audit entry count differs", self.audit_entries, other.audit_entries),
            ("copy check failed: the journal entry count differs", self.journal_entries, other.journal_entries),
            ("copy check failed: the journal checksum differs", self.journal_checksum, other.journal_checksum),
            ("copy check failed: the tile snapshot count differs", self.tiles, other.tiles),
            ("copy check failed: the canvas checksum differs", self.canvas_checksum, other.canvas_checksum),
        ];
        fields.into_iter().find(|(_, a, b)| a != b).map(|(what, ..)| what)
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "users {}, rooms {}, room messages {}, direct messages {}, bans {}, audit entries {}, \
             journal entries {} (checksum {:016x}), tile snapshots {}, canvas checksum {:016x}",
            self.users,
            self.rooms,
            self.room_messages,
            self.direct_messages,
            self.bans,
            self.audit_entries,
            self.journal_entries,
            self.journal_checksum,
            self.tiles,
            self.canvas_checksum
        )
    }
}

/// What [`copy_all`] copied, and both stores' [`Counts`] afterwards. Sessions are never
/// copied.
#[derive(Debug, Clone, Default)]
pub struct CopyReport {
    /// Users.
    pub users: u64,
    /// Rooms.
    pub rooms: u64,
    /// Room messages, deleted ones included.
    pub room_messages: u64,
    /// Of those, deleted ones.
    pub deleted_room_messages: u64,
    /// Direct messages, deleted ones included.
    pub direct_messages: u64,
    /// Friendships (each pair once), pending friend requests and blocks.
    pub relations: u64,
    /// User bans and address bans.
    pub bans: u64,
    /// Audit entries copied from the source.
    pub audit_entries: u64,
    /// Audit entries the target has beyond the source's: one per ban whose own audit entry
    /// the source lacks (writing a ban always audits it).
    pub extra_audit_entries: u64,
    /// Whether the source's audit ids had gaps, so the target's differ (dense again).
    pub audit_renumbered: bool,
    /// Canvas journal entries.
    pub journal_entries: u64,
    /// Tile snapshots.
    pub tiles: u64,
    /// The source's counts after the copy.
    pub source: Counts,
    /// The target's counts after the copy.
    pub target: Counts,
}

impl CopyReport {
    /// Whether the target holds what the source does (its counts and checksums equal the
    /// source's, but for [`CopyReport::extra_audit_entries`]); an error says what differs.
    pub fn check(&self) -> Result<()> {
        let expected = Counts { audit_entries: self.source.audit_entries + self.extra_audit_entries, ..self.source };
        match expected.first_difference(&self.target) {
            Some(what) => Err(StorageError::invalid(what)),
            None => Ok(()),
        }
    }
}

impl fmt::Display for CopyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "copied: {} users, {} rooms, {} room messages ({} deleted), {} direct messages, {} relations, \
             {} bans, {} audit entries, {} journal entries, {} tile snapshots",
            self.users,
            self.rooms,
            self.room_messages,
            self.deleted_room_messages,
            self.direct_messages,
            self.relations,
            self.bans,
            self.audit_entries,
            self.journal_entries,
            self.tiles
        )?;
        writeln!(f, "not copied: login sessions (users log in again)")?;
        if self.extra_audit_entries > 0 {
            writeln!(f, "audit: {} extra entries (bans the source had not audited)", self.extra_audit_entries)?;
        }
        if self.audit_renumbered {
            writeln!(f, "audit: the source's ids had gaps; the copy's are dense")?;
        }
        writeln!(f, "source: {}", self.source)?;
        write!(f, "target: {}", self.target)
    }
}

/// Copies everything `from` holds into `to`, which must be empty (no user, room, journal
/// entry, tile snapshot, address ban or audit entry: refused as invalid otherwise). Nothing
/// may write to either store meanwhile. Sessions are not copied: users log in again.
///
/// Fails, part way, when the target would not keep an id or sequence: the source's user or
/// room ids, or a conversation's sequences, have gaps (the target assigns them densely).
/// Call [`CopyReport::check`] on the result: the counts and checksums of both sides.
pub async fn copy_all(from: &dyn Backend, to: &dyn Backend) -> Result<CopyReport> {
    ensure_empty(to).await?;
    let mut report = CopyReport::default();
    tracing::info!("copying users");
    let users = copy_users(from, to).await?;
    report.users = users.len() as u64;
    tracing::info!("copying rooms");
    let rooms = copy_rooms(from, to).await?;
    report.rooms = rooms.len() as u64;
    tracing::info!("copying friendships, requests and blocks");
    report.relations = copy_relations(from, to, &users).await?;
    tracing::info!("copying room messages");
    for &room in &rooms {
        copy_room_messages(from, to, room, &mut report).await?;
    }
    tracing::info!("copying direct messages");
    for &user in &users {
        for peer in conversation_peers(from, user).await? {
            report.direct_messages += copy_conversation(from, to, user, peer).await?;
        }
    }
    tracing::info!("copying the canvas");
    copy_canvas(from, to, &mut report).await?;
    tracing::info!("copying bans and the audit log");
    copy_moderation(from, to, &mut report).await?;
    to.flush().await?;
    tracing::info!("counting both stores");
    report.source = counts(from).await?;
    report.target = counts(to).await?;
    Ok(report)
}

/// Counts both stores and compares them: the source's counts, or an error that says which
/// count (or checksum) differs.
pub async fn verify(from: &dyn Backend, to: &dyn Backend) -> Result<Counts> {
    let (source, target) = (counts(from).await?, counts(to).await?);
    match source.first_difference(&target) {
        Some(what) => Err(StorageError::invalid(what)),
        None => Ok(source),
    }
}

/// What `b` holds (reads all of it: the journal and the audit log page by page).
pub async fn counts(b: &dyn Backend) -> Result<Counts> {
    let mut counts = Counts { users: b.user_count().await?, rooms: b.room_count().await?, ..Counts::default() };
    for room in room_ids(b).await? {
        counts.room_messages += b.room_last_seq(room).await?;
    }
    for user in user_ids(b).await? {
        let list = b.conversations(user, PER_USER_MAX + 1).await?;
        let list = bounded(list, PER_USER_MAX, "a user has too many conversations to copy")?;
        counts.direct_messages += list.iter().filter(|c| c.peer >= user).map(|c| c.last_seq).sum::<u64>();
    }
    counts.bans = (user_bans(b).await?.len() + b.net_bans().await?.len()) as u64;
    let mut before = u64::MAX;
    loop {
        let page = b.audit_log(before, PAGE).await?;
        counts.audit_entries += page.len() as u64;
        match page.last() {
            Some(oldest) if page.len() == PAGE => before = oldest.seq,
            _ => break,
        }
    }
    (counts.journal_entries, counts.journal_checksum) = journal_checksum(b).await?;
    counts.tiles = b.tile_snapshot_seqs().await?.len() as u64;
    counts.canvas_checksum = canvas_checksum(b).await?;
    Ok(counts)
}

async fn ensure_empty(to: &dyn Backend) -> Result<()> {
    if to.user_count().await? > 0 || to.room_count().await? > 0 || to.last_journal_seq().await? > 0 {
        return Err(StorageError::invalid("the target store is not empty: it has users, rooms or canvas updates"));
    }
    let audited = !to.audit_log(u64::MAX, 1).await?.is_empty();
    if audited || !to.net_bans().await?.is_empty() || !to.tile_snapshot_seqs().await?.is_empty() {
        return Err(StorageError::invalid(
            "the target store is not empty: it has audit entries, address bans or tile snapshots",
        ));
    }
    Ok(())
}

fn bounded<T>(list: Vec<T>, max: usize, what: &'static str) -> Result<Vec<T>> {
    if list.len() > max { Err(StorageError::invalid(what)) } else { Ok(list) }
}

fn no_one() -> Hidden {
    Arc::from(Vec::new())
}

async fn user_ids(b: &dyn Backend) -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    loop {
        let page = b.users(ids.last().copied().unwrap_or(0), PAGE).await?;
        ids.extend(page.iter().map(|u| u.id));
        if page.len() < PAGE {
            return Ok(ids);
        }
    }
}

async fn room_ids(b: &dyn Backend) -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    loop {
        let page = b.rooms(ids.last().copied().unwrap_or(0), PAGE).await?;
        ids.extend(page.iter().map(|r| r.id));
        if page.len() < PAGE {
            return Ok(ids);
        }
    }
}

async fn user_bans(b: &dyn Backend) -> Result<Vec<(u32, Ban)>> {
    bounded(b.user_bans(USER_BANS_MAX + 1).await?, USER_BANS_MAX, "too many user bans to copy")
}

/// Users in id order, with their names, password hashes, roles and creation times; the ids
/// the target assigns (densely, from 1) must be the source's.
async fn copy_users(from: &dyn Backend, to: &dyn Backend) -> Result<Vec<u32>> {
    let mut ids: Vec<u32> = Vec::new();
    loop {
        let page = from.users(ids.last().copied().unwrap_or(0), PAGE).await?;
        for u in &page {
            let expected = ids.last().map_or(1, |last| last + 1);
            if u.id != expected {
                tracing::error!(id = u.id, expected, "the source's user ids have a gap");
                return Err(StorageError::invalid("the source's user ids have a gap: the target would renumber"));
            }
            let made = to.create_user(u.name.clone(), u.password_hash.clone(), u.role, u.created_ms).await?;
            if made.id != u.id {
                tracing::error!(id = u.id, assigned = made.id, "the target assigned another user id");
                return Err(StorageError::invalid("the target assigned another user id than the source's"));
            }
            ids.push(u.id);
        }
        if page.len() < PAGE {
            return Ok(ids);
        }
    }
}

/// Rooms in id order, checked as [`copy_users`].
async fn copy_rooms(from: &dyn Backend, to: &dyn Backend) -> Result<Vec<u32>> {
    let mut ids: Vec<u32> = Vec::new();
    loop {
        let page = from.rooms(ids.last().copied().unwrap_or(0), PAGE).await?;
        for r in &page {
            let expected = ids.last().map_or(1, |last| last + 1);
            if r.id != expected {
                tracing::error!(id = r.id, expected, "the source's room ids have a gap");
                return Err(StorageError::invalid("the source's room ids have a gap: the target would renumber"));
            }
            // Text stored before control characters were refused is copied made plain.
            let made = to.create_room(crate::chat::plain(&r.name), r.created_by, r.created_ms).await?;
            if made.id != r.id {
                tracing::error!(id = r.id, assigned = made.id, "the target assigned another room id");
                return Err(StorageError::invalid("the target assigned another room id than the source's"));
            }
            ids.push(r.id);
        }
        if page.len() < PAGE {
            return Ok(ids);
        }
    }
}

/// Friendships (a request accepted at the friendship's time), pending requests, then blocks
/// (a block ends any friendship or request between the two, so it comes last; the source has
/// none between a blocked pair anyway). Returns how many.
async fn copy_relations(from: &dyn Backend, to: &dyn Backend, users: &[u32]) -> Result<u64> {
    const TOO_MANY: &str = "a user has too many friends, requests or blocks to copy";
    let requested = |outcome| match outcome {
        FriendOutcome::Requested => Ok(()),
        FriendOutcome::BecameFriends => Err(StorageError::invalid("the source has friend requests both ways")),
    };
    let mut copied = 0;
    for &user in users {
        for f in bounded(from.friends_of(user, PER_USER_MAX + 1).await?, PER_USER_MAX, TOO_MANY)? {
            if f.user > user {
                requested(to.request_friend(user, f.user, f.since_ms).await?)?;
                to.accept_friend(f.user, user, f.since_ms).await?;
                copied += 1;
            }
        }
        for r in bounded(from.outgoing_requests(user, PER_USER_MAX + 1).await?, PER_USER_MAX, TOO_MANY)? {
            requested(to.request_friend(user, r.user, r.since_ms).await?)?;
            copied += 1;
        }
    }
    for &user in users {
        for b in bounded(from.blocks_of(user, PER_USER_MAX + 1).await?, PER_USER_MAX, TOO_MANY)? {
            to.block(user, b.user, b.since_ms).await?;
            copied += 1;
        }
    }
    Ok(copied)
}

/// The messages of `lo..=hi` (those that exist, ascending): what one history page shows, and
/// every other sequence (deleted, or beyond the page's bounded scan) read one by one.
async fn window(
    page: Vec<Message>,
    lo: u64,
    hi: u64,
    one: impl Fn(u64) -> Op<Option<Message>>,
) -> Result<Vec<Message>> {
    let mut found: BTreeMap<u64, Message> =
        page.into_iter().filter(|m| (lo..=hi).contains(&m.seq)).map(|m| (m.seq, m)).collect();
    for seq in lo..=hi {
        if !found.contains_key(&seq)
            && let Some(m) = one(seq).await?
        {
            found.insert(seq, m);
        }
    }
    Ok(found.into_values().collect())
}

/// One room's messages under their own sequences, deleted ones as deleted, in ascending
/// batches of at most [`PAGE`].
async fn copy_room_messages(from: &dyn Backend, to: &dyn Backend, room: u32, report: &mut CopyReport) -> Result<()> {
    let last = from.room_last_seq(room).await?;
    let mut lo = 1;
    while lo <= last {
        let hi = last.min(lo + PAGE as u64 - 1);
        let page = from.room_history(room, hi + 1, PAGE, no_one()).await?;
        let batch = window(page, lo, hi, |seq| from.room_message(room, seq)).await?;
        let batch: Vec<Message> =
            batch.into_iter().map(|m| Message { text: crate::chat::plain(&m.text), ..m }).collect();
        report.room_messages += batch.len() as u64;
        report.deleted_room_messages += batch.iter().filter(|m| m.deleted).count() as u64;
        if !batch.is_empty() {
            to.commit_tick(TickWrite { messages: vec![(room, batch)], ..TickWrite::default() }).await?;
        }
        lo = hi + 1;
    }
    if to.room_last_seq(room).await? != last {
        return Err(StorageError::invalid("the target's last room message differs from the source's"));
    }
    Ok(())
}

/// The peers of `user`'s conversations that [`copy_conversation`] takes from `user`'s side
/// (each pair once: from its lower id).
async fn conversation_peers(from: &dyn Backend, user: u32) -> Result<Vec<u32>> {
    let list = from.conversations(user, PER_USER_MAX + 1).await?;
    let list = bounded(list, PER_USER_MAX, "a user has too many conversations to copy")?;
    let mut peers: Vec<u32> = list.iter().map(|c| c.peer).filter(|&p| p >= user).collect();
    peers.sort_unstable();
    Ok(peers)
}

/// The conversation between `a` and `b`, appended message by message (the target assigns
/// the sequences, which must be the source's); a deleted one is appended and deleted again.
async fn copy_conversation(from: &dyn Backend, to: &dyn Backend, a: u32, b: u32) -> Result<u64> {
    let last = from.direct_last_seq(a, b).await?;
    let (mut lo, mut copied) = (1, 0);
    while lo <= last {
        let hi = last.min(lo + PAGE as u64 - 1);
        let page = from.direct_history(a, b, hi + 1, PAGE, no_one()).await?;
        for m in window(page, lo, hi, |seq| from.direct_message(a, b, seq)).await? {
            let peer = match m.author {
                author if author == a => b,
                author if author == b => a,
                _ => return Err(StorageError::invalid("a direct message's author is not in its conversation")),
            };
            let text = if m.deleted { DELETED_TEXT.to_owned() } else { crate::chat::plain(&m.text) };
            let made = to.append_direct(m.author, peer, m.time_ms, text).await?;
            if made.seq != m.seq {
                tracing::error!(a, b, seq = m.seq, assigned = made.seq, "a direct message sequence changed");
                return Err(StorageError::invalid("the source's direct message sequences have a gap"));
            }
            if m.deleted {
                to.delete_direct(a, b, m.seq).await?;
            }
            copied += 1;
        }
        lo = hi + 1;
    }
    Ok(copied)
}

/// The canvas geometry, the journal (blocks of at most [`JOURNAL_PAGE`] entries spanning at
/// most [`BLOCK_SPAN_MS`]) and the tile snapshots.
async fn copy_canvas(from: &dyn Backend, to: &dyn Backend, report: &mut CopyReport) -> Result<()> {
    if let Some(geometry) = from.canvas_geometry().await? {
        to.init_canvas(geometry).await?;
    }
    let mut after = 0;
    loop {
        let page = from.journal_after(after, JOURNAL_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for block in blocks(&page) {
            to.commit_tick(TickWrite { pixels: block.to_vec(), ..TickWrite::default() }).await?;
        }
        report.journal_entries += page.len() as u64;
        if page.len() < JOURNAL_PAGE {
            break;
        }
    }
    let tiles = from.tile_snapshots().await?;
    report.tiles = tiles.len() as u64;
    for batch in tiles.chunks(TILE_BATCH) {
        to.save_tiles(batch.to_vec()).await?;
    }
    Ok(())
}

/// `page` cut into journal blocks: a new block starts where a record's time leaves
/// `first..=first + BLOCK_SPAN_MS` of its block's first record.
fn blocks(page: &[PixelRecord]) -> Vec<&[PixelRecord]> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, r) in page.iter().enumerate() {
        let first = page[start].time_ms;
        if !(first..=first.saturating_add(BLOCK_SPAN_MS)).contains(&r.time_ms) {
            out.push(&page[start..i]);
            start = i;
        }
    }
    if start < page.len() {
        out.push(&page[start..]);
    }
    out
}

/// A ban still to write, found under the audit entry that recorded it.
#[derive(Debug)]
enum PendingBan {
    User(u32, Ban),
    Net(IpNet, Ban),
}

impl PendingBan {
    /// The audit entry the backends write with this ban (`moderation::Tx::ban_user`,
    /// `ban_net`, and their PostgreSQL twins).
    fn draft(&self) -> AuditDraft {
        match self {
            Self::User(user, ban) => AuditDraft {
                actor: ban.by,
                action: AuditAction::BanUser,
                target: user.to_string(),
                detail: match ban.expires_ms {
                    Some(until) => format!("{} (until {until})", ban.reason),
                    None => ban.reason.clone(),
                },
                time_ms: ban.created_ms,
            },
            Self::Net(net, ban) => AuditDraft {
                actor: ban.by,
                action: AuditAction::BanNet,
                target: net.trunc().to_string(),
                detail: ban.reason.clone(),
                time_ms: ban.created_ms,
            },
        }
    }

    async fn write(self, to: &dyn Backend) -> Result<()> {
        match self {
            Self::User(user, ban) => to.ban_user(user, ban).await,
            Self::Net(net, ban) => to.ban_net(net, ban).await,
        }
    }
}

fn draft_of(e: &AuditEntry) -> AuditDraft {
    AuditDraft {
        actor: e.actor,
        action: e.action,
        target: e.target.clone(),
        detail: e.detail.clone(),
        time_ms: e.time_ms,
    }
}

/// Bans and the audit log together, oldest entry first: writing a ban audits it, so each ban
/// is written in place of the entry that recorded it, and every other entry as it is. The log
/// is read newest first, so a first pass finds where its pages start (the log is not held in
/// memory). A ban without its entry is written last (an extra entry, reported).
async fn copy_moderation(from: &dyn Backend, to: &dyn Backend, report: &mut CopyReport) -> Result<()> {
    let mut pending: BTreeMap<(&'static str, String), PendingBan> = BTreeMap::new();
    for (user, ban) in user_bans(from).await? {
        let ban = PendingBan::User(user, ban);
        pending.insert((AuditAction::BanUser.name(), ban.draft().target), ban);
    }
    for net in from.net_bans().await? {
        let ban = PendingBan::Net(net.net, net.ban);
        pending.insert((AuditAction::BanNet.name(), ban.draft().target), ban);
    }
    report.bans = pending.len() as u64;
    let mut starts = Vec::new();
    let mut before = u64::MAX;
    loop {
        let page = from.audit_log(before, PAGE).await?;
        let Some(oldest) = page.last() else { break };
        starts.push(before);
        before = oldest.seq;
        if page.len() < PAGE {
            break;
        }
    }
    for &before in starts.iter().rev() {
        for entry in from.audit_log(before, PAGE).await?.iter().rev() {
            report.audit_entries += 1;
            report.audit_renumbered |= entry.seq != report.audit_entries;
            let draft = draft_of(entry);
            let key = (entry.action.name(), entry.target.clone());
            match pending.remove(&key) {
                Some(ban) if ban.draft() == draft => ban.write(to).await?,
                Some(ban) => {
                    pending.insert(key, ban);
                    to.audit(draft).await?;
                }
                None => to.audit(draft).await?,
            }
        }
    }
    for ban in pending.into_values() {
        tracing::warn!(?ban, "a ban has no audit entry in the source; writing it adds one");
        ban.write(to).await?;
        report.extra_audit_entries += 1;
    }
    Ok(())
}

/// FNV-1a, 64 bit: a checksum to compare two copies by, not a defence against tampering.
#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    const fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
}

/// How many journal entries `b` holds, and their checksum.
async fn journal_checksum(b: &dyn Backend) -> Result<(u64, u64)> {
    let (mut count, mut sum, mut after) = (0u64, Fnv::new(), 0);
    loop {
        let page = b.journal_after(after, JOURNAL_PAGE).await?;
        for r in &page {
            for v in [r.seq, u64::from(r.x), u64::from(r.y), u64::from(r.colour), u64::from(r.user), r.time_ms] {
                sum.u64(v);
            }
        }
        count += page.len() as u64;
        match page.last() {
            Some(last) if page.len() == JOURNAL_PAGE => after = last.seq,
            _ => return Ok((count, sum.0)),
        }
    }
}

/// The checksum of the canvas `b` recovers (0 without a canvas).
async fn canvas_checksum(b: &dyn Backend) -> Result<u64> {
    let Some(geometry) = b.canvas_geometry().await? else { return Ok(0) };
    let canvas = b.recover_canvas(geometry).await?;
    let mut sum = Fnv::new();
    for v in [geometry.width(), geometry.height(), u32::from(geometry.bpp()), u32::from(geometry.tile_size())] {
        sum.u64(u64::from(v));
    }
    for (tile, seq) in canvas.tiles.iter().zip(&canvas.tile_seqs) {
        sum.bytes(tile);
        sum.u64(*seq);
    }
    sum.u64(canvas.last_seq);
    Ok(sum.0)
}
