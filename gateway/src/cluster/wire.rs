//! What nodes tell each other through Redis pub/sub, and its bytes: committed canvas updates,
//! room messages, control log entries, direct messages, presence. Every announcement names its node (a node
//! skips its own echo) and is checked whole on decode: a malformed one is an error, never a
//! panic, and nothing is trusted beyond its declared counts, which are bounded.
//!
//! Layout (little-endian): `tag u8, node u64`, then per tag:
//! - 1 canvas: `count u32`, then per update `seq u64, x u16, y u16, colour u8, user u32, time u64`;
//! - 2 room: `room u32, count u32`, then per message `seq u64, author u32, time u64,
//!   deleted u8, name (len u16, UTF-8), text (len u32, UTF-8)`;
//! - 3 control event: `id u64`, then the event (UTF-8, see [`super::control`]) to the end;
//! - 4 direct message: `from u32, to u32, seq u64`, then the encoded `DirectMessage` frame to
//!   the end;
//! - 5 presence: `room u32, count u32`, then per member `user u32, name (len u16, UTF-8)`;
//! - 6 online users: `count u32`, then `user u32` each (the node's whole list).

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use pixelparty_engine::msg::FedPost;
use pixelparty_storage::PixelRecord;

/// Most updates or messages one announcement carries (a tick's batch is far below).
pub const MAX_ITEMS: usize = 1 << 20;

const CANVAS: u8 = 1;
const ROOM: u8 = 2;
const CONTROL: u8 = 3;
const DIRECT: u8 = 4;
const PRESENCE: u8 = 5;
const ONLINE: u8 = 6;
const RECORD_LEN: usize = 8 + 2 + 2 + 1 + 4 + 8;

/// One announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Committed canvas updates (ascending sequences).
    Canvas(Vec<PixelRecord>),
    /// Committed messages of one room.
    Room {
        /// The room.
        room: u32,
        /// Its messages.
        posts: Vec<FedPost>,
    },
    /// A control log entry (see [`super::control`]).
    Control {
        /// Its id in the log.
        id: u64,
        /// The event, encoded.
        event: String,
    },
    /// A stored direct message, as its encoded frame.
    Direct {
        /// Sender.
        from: u32,
        /// Recipient.
        to: u32,
        /// Its sequence in the conversation.
        seq: u64,
        /// The encoded `DirectMessage` frame.
        frame: Bytes,
    },
    /// The announcing node's members of a room (the whole list; empty: none).
    Presence {
        /// The room.
        room: u32,
        /// Its members here.
        users: Vec<(u32, Arc<str>)>,
    },
    /// The announcing node's online users (the whole list, see [`crate::online`]).
    Online(Vec<u32>),
}

/// Why an announcement could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// It ends before its declared content.
    Truncated,
    /// Bytes after its declared content.
    Trailing,
    /// An unknown tag.
    UnknownTag(u8),
    /// A count beyond [`MAX_ITEMS`].
    TooMany,
    /// A string that is not UTF-8.
    NotUtf8,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Truncated => f.write_str("announcement truncated"),
            Self::Trailing => f.write_str("bytes after the announcement"),
            Self::UnknownTag(t) => write!(f, "unknown announcement tag {t}"),
            Self::TooMany => f.write_str("announcement count too large"),
            Self::NotUtf8 => f.write_str("announcement string is not UTF-8"),
        }
    }
}

impl std::error::Error for WireError {}

/// Encodes `event` as announced by `node`.
pub fn encode(node: u64, event: &Event) -> Bytes {
    let mut out = BytesMut::new();
    match event {
        Event::Canvas(records) => {
            out.reserve(13 + records.len() * RECORD_LEN);
            out.put_u8(CANVAS);
            out.put_u64_le(node);
            out.put_u32_le(records.len() as u32);
            for r in records {
                out.put_u64_le(r.seq);
                out.put_u16_le(r.x);
                out.put_u16_le(r.y);
                out.put_u8(r.colour);
                out.put_u32_le(r.user);
                out.put_u64_le(r.time_ms);
            }
        }
        Event::Room { room, posts } => {
            out.put_u8(ROOM);
            out.put_u64_le(node);
            out.put_u32_le(*room);
            out.put_u32_le(posts.len() as u32);
            for p in posts {
                out.put_u64_le(p.seq);
                out.put_u32_le(p.author);
                out.put_u64_le(p.time_ms);
                out.put_u8(u8::from(p.deleted));
                put_name(&mut out, &p.name);
                out.put_u32_le(p.text.len() as u32);
                out.put_slice(p.text.as_bytes());
            }
        }
        Event::Control { id, event } => {
            out.put_u8(CONTROL);
            out.put_u64_le(node);
            out.put_u64_le(*id);
            out.put_slice(event.as_bytes());
        }
        Event::Direct { from, to, seq, frame } => {
            out.put_u8(DIRECT);
            out.put_u64_le(node);
            out.put_u32_le(*from);
            out.put_u32_le(*to);
            out.put_u64_le(*seq);
            out.put_slice(frame);
        }
        Event::Presence { room, users } => {
            out.put_u8(PRESENCE);
            out.put_u64_le(node);
            out.put_u32_le(*room);
            out.put_u32_le(users.len() as u32);
            for (user, name) in users {
                out.put_u32_le(*user);
                put_name(&mut out, name);
            }
        }
        Event::Online(users) => {
            out.put_u8(ONLINE);
            out.put_u64_le(node);
            out.put_u32_le(users.len() as u32);
            for user in users {
                out.put_u32_le(*user);
            }
        }
    }
    out.freeze()
}

/// A name as `len u16, UTF-8` (names are far shorter; a longer one is cut at a character).
fn put_name(out: &mut BytesMut, name: &str) {
    let mut end = name.len().min(usize::from(u16::MAX));
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    out.put_u16_le(end as u16);
    out.put_slice(&name.as_bytes()[..end]);
}

fn need(b: &[u8], n: usize) -> Result<(), WireError> {
    if b.remaining() < n { Err(WireError::Truncated) } else { Ok(()) }
}

fn count(b: &mut &[u8], each: usize) -> Result<usize, WireError> {
    need(b, 4)?;
    let n = b.get_u32_le() as usize;
    if n > MAX_ITEMS {
        return Err(WireError::TooMany);
    }
    // Each item takes at least `each` bytes: a count the bytes cannot hold is refused before
    // anything is allocated for it.
    need(b, n.saturating_mul(each))?;
    Ok(n)
}

fn string(b: &mut &[u8], len: usize) -> Result<String, WireError> {
    need(b, len)?;
    let s = std::str::from_utf8(&b[..len]).map_err(|_| WireError::NotUtf8)?.to_owned();
    b.advance(len);
    Ok(s)
}

/// Decodes an announcement: its node and event.
pub fn decode(bytes: &[u8]) -> Result<(u64, Event), WireError> {
    let mut b = bytes;
    need(b, 9)?;
    let tag = b.get_u8();
    let node = b.get_u64_le();
    let event = match tag {
        CANVAS => {
            let n = count(&mut b, RECORD_LEN)?;
            let mut records = Vec::with_capacity(n);
            for _ in 0..n {
                records.push(PixelRecord {
                    seq: b.get_u64_le(),
                    x: b.get_u16_le(),
                    y: b.get_u16_le(),
                    colour: b.get_u8(),
                    user: b.get_u32_le(),
                    time_ms: b.get_u64_le(),
                });
            }
            Event::Canvas(records)
        }
        ROOM => {
            need(b, 4)?;
            let room = b.get_u32_le();
            let n = count(&mut b, 8 + 4 + 8 + 1 + 2 + 4)?;
            let mut posts = Vec::with_capacity(n);
            for _ in 0..n {
                need(b, 8 + 4 + 8 + 1 + 2)?;
                let (seq, author, time_ms, deleted) = (b.get_u64_le(), b.get_u32_le(), b.get_u64_le(), b.get_u8() != 0);
                let name_len = usize::from(b.get_u16_le());
                let name = string(&mut b, name_len)?;
                need(b, 4)?;
                let text_len = b.get_u32_le() as usize;
                let text = string(&mut b, text_len)?;
                posts.push(FedPost { seq, author, name: Arc::from(name), time_ms, text: text.into(), deleted });
            }
            Event::Room { room, posts }
        }
        CONTROL => {
            need(b, 8)?;
            let id = b.get_u64_le();
            let len = b.len();
            let event = string(&mut b, len)?;
            Event::Control { id, event }
        }
        DIRECT => {
            need(b, 16)?;
            let (from, to, seq) = (b.get_u32_le(), b.get_u32_le(), b.get_u64_le());
            let frame = Bytes::copy_from_slice(b);
            b = &[];
            Event::Direct { from, to, seq, frame }
        }
        PRESENCE => {
            need(b, 4)?;
            let room = b.get_u32_le();
            let n = count(&mut b, 4 + 2)?;
            let mut users = Vec::with_capacity(n);
            for _ in 0..n {
                need(b, 6)?;
                let user = b.get_u32_le();
                let len = usize::from(b.get_u16_le());
                users.push((user, Arc::from(string(&mut b, len)?)));
            }
            Event::Presence { room, users }
        }
        ONLINE => {
            let n = count(&mut b, 4)?;
            Event::Online((0..n).map(|_| b.get_u32_le()).collect())
        }
        other => return Err(WireError::UnknownTag(other)),
    };
    if !b.is_empty() {
        return Err(WireError::Trailing);
    }
    Ok((node, event))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn post(seq: u64, name: &str, text: &str, deleted: bool) -> FedPost {
        FedPost { seq, author: 7, name: Arc::from(name), time_ms: 99, text: text.into(), deleted }
    }

    #[test]
    fn every_event_round_trips() {
        let events = [
            Event::Canvas(vec![
                PixelRecord { seq: 1, x: 2, y: 3, colour: 4, user: 5, time_ms: 6 },
                PixelRecord { seq: 2, x: 65535, y: 0, colour: 255, user: u32::MAX, time_ms: u64::MAX },
            ]),
            Event::Canvas(Vec::new()),
            Event::Room { room: 9, posts: vec![post(1, "ann", "hello, wörld", false), post(2, "", "", true)] },
            Event::Control { id: 44, event: "{\"kind\":\"net_bans_changed\"}".into() },
            Event::Direct { from: 1, to: 2, seq: 9, frame: Bytes::from_static(b"\x01\x02\x03") },
            Event::Presence { room: 5, users: vec![(1, Arc::from("ann")), (2, Arc::from(""))] },
            Event::Presence { room: 5, users: Vec::new() },
            Event::Online(vec![1, 7, u32::MAX]),
            Event::Online(Vec::new()),
        ];
        for e in events {
            assert_eq!(decode(&encode(42, &e)), Ok((42, e)));
        }
    }

    #[test]
    fn malformed_announcements_are_errors() {
        assert_eq!(decode(&[]), Err(WireError::Truncated));
        assert_eq!(decode(&[9, 0, 0, 0, 0, 0, 0, 0, 0]), Err(WireError::UnknownTag(9)));
        let zero = PixelRecord { seq: 0, x: 0, y: 0, colour: 0, user: 0, time_ms: 0 };
        let mut canvas = encode(1, &Event::Canvas(vec![zero])).to_vec();
        canvas.push(0);
        assert_eq!(decode(&canvas), Err(WireError::Trailing));
        canvas.truncate(canvas.len() - 2);
        assert_eq!(decode(&canvas), Err(WireError::Truncated));
        let mut huge = vec![CANVAS, 0, 0, 0, 0, 0, 0, 0, 0];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&huge), Err(WireError::TooMany));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
        }
    }
}
