//! Rooms, room messages and direct messages.
//!
//! Room messages are keyed room ‖ seq, direct messages lo ‖ hi ‖ seq (the pair of user ids in
//! ascending order), so a history page is one reverse range scan. Room sequences are assigned
//! by the engine's room home shard; direct-message sequences by the writer (one writer, so
//! exact). A deleted message keeps its slot without its text: sequences stay gapless.

use pixelparty_protocol::limits::{MAX_ROOM_NAME_BYTES, MAX_TEXT_BYTES};

use crate::accounts::fold_name;
use crate::codec::{key, key_u32, key_u64};
use crate::db::{Db, names};
use crate::error::{Result, StorageError};
use crate::records::{Conversation, Message, Room};
use crate::writer::Tx;

fn room_key(room: u32, seq: u64) -> Vec<u8> {
    key(&[&room.to_be_bytes(), &seq.to_be_bytes()])
}

/// The two users of a conversation in ascending order.
pub fn conversation_pair(a: u32, b: u32) -> (u32, u32) {
    (a.min(b), a.max(b))
}

fn direct_prefix(a: u32, b: u32) -> Vec<u8> {
    let (lo, hi) = conversation_pair(a, b);
    key(&[&lo.to_be_bytes(), &hi.to_be_bytes()])
}

fn direct_key(a: u32, b: u32, seq: u64) -> Vec<u8> {
    key(&[&direct_prefix(a, b), &seq.to_be_bytes()])
}

/// Whether `c` is a control character other than tab and line breaks (a NUL cannot even be
/// stored in PostgreSQL's text).
pub fn is_forbidden_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// Checks message text: not blank, within the protocol's limit, no control characters but tab
/// and line breaks.
pub fn check_text(text: &str) -> Result<()> {
    if text.trim().is_empty() || text.len() > MAX_TEXT_BYTES {
        return Err(StorageError::invalid("message text must be 1..=2000 bytes and not blank"));
    }
    if text.chars().any(is_forbidden_control) {
        return Err(StorageError::invalid("message text may hold no control characters but tab and line breaks"));
    }
    Ok(())
}

/// Checks a room name and returns it trimmed: 1..=64 bytes, no control characters.
pub fn check_room_name(name: &str) -> Result<&str> {
    let name = name.trim();
    if name.is_empty() || name.len() > MAX_ROOM_NAME_BYTES || name.chars().any(char::is_control) {
        return Err(StorageError::invalid("room name must be 1..=64 bytes without control characters"));
    }
    Ok(name)
}

/// Free text the server records on someone's behalf (a ban's reason, an audit detail) with
/// its control characters (but tab and line breaks) replaced by U+FFFD.
pub fn plain(text: &str) -> String {
    text.chars().map(|c| if is_forbidden_control(c) { char::REPLACEMENT_CHARACTER } else { c }).collect()
}

impl Db {
    /// The room with this id.
    pub fn room(&self, id: u32) -> Result<Option<Room>> {
        self.rooms.get(id.to_be_bytes())?.map(|v| Room::decode(&v)).transpose()
    }

    /// Number of rooms (ids are dense and never reused).
    pub fn room_count(&self) -> Result<u32> {
        self.last_u32(&self.rooms, names::ROOMS)
    }

    /// The room with this name (case-insensitive).
    pub fn room_by_name(&self, name: &str) -> Result<Option<Room>> {
        if name.is_empty() || name.len() > MAX_ROOM_NAME_BYTES {
            return Ok(None);
        }
        match self.room_names.get(fold_name(name).as_bytes())? {
            Some(id) => self.room(key_u32(names::ROOM_NAMES, &id, 0)?),
            None => Ok(None),
        }
    }

    /// Up to `limit` rooms with ids above `after`.
    pub fn rooms(&self, after: u32, limit: usize) -> Result<Vec<Room>> {
        self.rooms
            .range(after.saturating_add(1).to_be_bytes()..)
            .take(limit)
            .map(|g| Room::decode(&g.into_inner()?.1))
            .collect()
    }

    /// The highest sequence stored in a room (0 when empty).
    pub fn room_last_seq(&self, room: u32) -> Result<u64> {
        match self.messages.prefix(room.to_be_bytes()).next_back() {
            Some(g) => key_u64(names::MESSAGES, &g.key()?, 4),
            None => Ok(0),
        }
    }

    /// One room message.
    pub fn room_message(&self, room: u32, seq: u64) -> Result<Option<Message>> {
        self.messages.get(room_key(room, seq))?.map(|v| Message::decode(names::MESSAGES, seq, &v)).transpose()
    }

    /// Up to `limit` messages of `room` with `seq < before` that are not deleted and pass
    /// `visible`, oldest first. Examines at most `history_scan_max` messages.
    pub fn room_history(
        &self,
        room: u32,
        before: u64,
        limit: usize,
        visible: impl Fn(&Message) -> bool,
    ) -> Result<Vec<Message>> {
        let range = room_key(room, 0)..room_key(room, before);
        self.history(&self.messages, names::MESSAGES, range, 4, limit, visible)
    }

    fn history(
        &self,
        ks: &fjall::Keyspace,
        name: &'static str,
        range: std::ops::Range<Vec<u8>>,
        seq_at: usize,
        limit: usize,
        visible: impl Fn(&Message) -> bool,
    ) -> Result<Vec<Message>> {
        let mut page = Vec::with_capacity(limit.min(64));
        for g in ks.range(range).rev().take(self.config.history_scan_max) {
            if page.len() >= limit {
                break;
            }
            let (k, v) = g.into_inner()?;
            let message = Message::decode(name, key_u64(name, &k, seq_at)?, &v)?;
            if !message.deleted && visible(&message) {
                page.push(message);
            }
        }
        page.reverse();
        Ok(page)
    }

    /// The highest sequence of the conversation between `a` and `b` (0 when empty).
    pub fn direct_last_seq(&self, a: u32, b: u32) -> Result<u64> {
        match self.direct.prefix(direct_prefix(a, b)).next_back() {
            Some(g) => key_u64(names::DIRECT, &g.key()?, 8),
            None => Ok(0),
        }
    }

    /// One direct message.
    pub fn direct_message(&self, a: u32, b: u32, seq: u64) -> Result<Option<Message>> {
        self.direct.get(direct_key(a, b, seq))?.map(|v| Message::decode(names::DIRECT, seq, &v)).transpose()
    }

    /// Like [`Db::room_history`] for the conversation between `a` and `b`.
    pub fn direct_history(
        &self,
        a: u32,
        b: u32,
        before: u64,
        limit: usize,
        visible: impl Fn(&Message) -> bool,
    ) -> Result<Vec<Message>> {
        let range = direct_key(a, b, 0)..direct_key(a, b, before);
        self.history(&self.direct, names::DIRECT, range, 8, limit, visible)
    }

    /// Up to `limit` conversations of `user`, most recent first.
    pub fn conversations(&self, user: u32, limit: usize) -> Result<Vec<Conversation>> {
        let mut all = self
            .conversations
            .prefix(user.to_be_bytes())
            .take(limit.saturating_mul(4).max(limit))
            .map(|g| {
                let (k, v) = g.into_inner()?;
                Conversation::decode(key_u32(names::CONVERSATIONS, &k, 4)?, &v)
            })
            .collect::<Result<Vec<_>>>()?;
        all.sort_by(|a, b| b.last_ms.cmp(&a.last_ms).then(a.peer.cmp(&b.peer)));
        all.truncate(limit);
        Ok(all)
    }
}

impl Tx<'_> {
    /// Creates a room. Fails with a conflict if the name is taken (case-insensitively).
    pub fn create_room(&mut self, name: &str, created_by: u32, now_ms: u64) -> Result<Room> {
        let name = check_room_name(name)?;
        let folded = fold_name(name);
        if self.room_names.contains_key(folded.as_bytes())? {
            return Err(StorageError::conflict("room name"));
        }
        let id = self.counters.next_room;
        let room = Room { id, name: name.to_owned(), created_by, created_ms: now_ms };
        let db = self.db;
        self.put(&db.rooms, id.to_be_bytes(), room.encode());
        self.put(&db.room_names, folded.into_bytes(), id.to_be_bytes());
        self.counters.next_room += 1;
        Ok(room)
    }

    /// Appends messages to a room under the sequences they carry (assigned by the caller).
    pub fn append_room_messages(&mut self, room: u32, messages: &[Message]) -> Result<()> {
        let db = self.db;
        for m in messages {
            self.put(&db.messages, room_key(room, m.seq), m.encode());
        }
        Ok(())
    }

    /// Tombstones a room message: the text is gone, the slot stays. Returns the message as it
    /// was.
    pub fn delete_room_message(&mut self, room: u32, seq: u64) -> Result<Message> {
        let mut m = self.room_message(room, seq)?.ok_or_else(|| StorageError::not_found("message"))?;
        let original = m.clone();
        m.text.clear();
        m.deleted = true;
        let db = self.db;
        self.put(&db.messages, room_key(room, seq), m.encode());
        Ok(original)
    }

    /// Appends a direct message from `from` to `to`, assigning the conversation's next
    /// sequence, and updates both users' conversation lists.
    pub fn append_direct(&mut self, from: u32, to: u32, now_ms: u64, text: &str) -> Result<Message> {
        check_text(text)?;
        let seq = self.direct_last_seq(from, to)? + 1;
        let m = Message { seq, author: from, time_ms: now_ms, text: text.to_owned(), deleted: false };
        let summary = Conversation { peer: to, last_seq: seq, last_ms: now_ms }.encode();
        let db = self.db;
        self.put(&db.direct, direct_key(from, to, seq), m.encode());
        self.put(&db.conversations, key(&[&from.to_be_bytes(), &to.to_be_bytes()]), summary.clone());
        self.put(&db.conversations, key(&[&to.to_be_bytes(), &from.to_be_bytes()]), summary);
        Ok(m)
    }

    /// Tombstones a direct message. Returns the message as it was.
    pub fn delete_direct(&mut self, a: u32, b: u32, seq: u64) -> Result<Message> {
        let mut m = self.direct_message(a, b, seq)?.ok_or_else(|| StorageError::not_found("message"))?;
        let original = m.clone();
        m.text.clear();
        m.deleted = true;
        let db = self.db;
        self.put(&db.direct, direct_key(a, b, seq), m.encode());
        Ok(original)
    }
}

#[cfg(test)]
mod tests {
    use crate::records::Role;
    use crate::testing::temp_fjall;

    use super::*;

    fn msg(seq: u64, author: u32, text: &str) -> Message {
        Message { seq, author, time_ms: seq * 10, text: text.into(), deleted: false }
    }

    #[test]
    fn rooms_are_unique() {
        let (_dir, store) = temp_fjall();
        let r = store.run(|tx| tx.create_room("General", 1, 0)).unwrap();
        assert_eq!(r.id, 1);
        assert!(store.run(|tx| tx.create_room("general", 1, 0)).unwrap_err().is_conflict());
        assert!(store.run(|tx| tx.create_room("  ", 1, 0)).unwrap_err().is_invalid());
        assert_eq!(store.room_by_name("GENERAL").unwrap().unwrap().id, 1);
        store.run(|tx| tx.create_room("random", 1, 0)).unwrap();
        assert_eq!(store.rooms(0, 10).unwrap().len(), 2);
        assert_eq!(store.rooms(1, 10).unwrap()[0].name, "random");
    }

    #[test]
    fn history_pages_skip_deleted_and_hidden() {
        let (_dir, store) = temp_fjall();
        let messages: Vec<Message> = (1..=10).map(|i| msg(i, (i % 2) as u32 + 1, &format!("m{i}"))).collect();
        store.run(move |tx| tx.append_room_messages(7, &messages)).unwrap();
        assert_eq!(store.room_last_seq(7).unwrap(), 10);
        assert_eq!(store.room_last_seq(8).unwrap(), 0);
        let page = store.room_history(7, u64::MAX, 3, |_| true).unwrap();
        assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), [8, 9, 10]);
        let page = store.room_history(7, 8, 3, |_| true).unwrap();
        assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), [5, 6, 7]);
        store.run(|tx| tx.delete_room_message(7, 10)).unwrap();
        let page = store.room_history(7, u64::MAX, 3, |m| m.author != 2).unwrap();
        assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), [4, 6, 8], "odd seqs (author 2) hidden, 10 deleted");
        let gone = store.room_message(7, 10).unwrap().unwrap();
        assert!(gone.deleted && gone.text.is_empty());
        assert!(store.run(|tx| tx.delete_room_message(7, 99)).unwrap_err().is_not_found());
    }

    #[test]
    fn direct_messages_sequence_per_pair() {
        let (_dir, store) = temp_fjall();
        for n in ["a", "b", "c"] {
            store.run(move |tx| tx.create_user(n, "h", Role::User, 0)).unwrap();
        }
        let m1 = store.run(|tx| tx.append_direct(1, 2, 100, "hi")).unwrap();
        let m2 = store.run(|tx| tx.append_direct(2, 1, 200, "yo")).unwrap();
        let m3 = store.run(|tx| tx.append_direct(1, 3, 300, "hey")).unwrap();
        assert_eq!((m1.seq, m2.seq, m3.seq), (1, 2, 1));
        assert_eq!(store.direct_history(2, 1, u64::MAX, 10, |_| true).unwrap().len(), 2);
        let convs = store.conversations(1, 10).unwrap();
        assert_eq!(convs.iter().map(|c| c.peer).collect::<Vec<_>>(), [3, 2], "most recent first");
        store.run(|tx| tx.delete_direct(1, 2, 1)).unwrap();
        assert_eq!(store.direct_history(1, 2, u64::MAX, 10, |_| true).unwrap().len(), 1);
        assert!(store.run(|tx| tx.append_direct(1, 2, 0, " ")).unwrap_err().is_invalid());
    }
}
