//! Entry points for the fuzz targets in `fuzz/` and for the fuzz smoke test run by
//! `cargo test` (`tests/fuzz_smoke.rs`). Each takes arbitrary bytes and panics only if a
//! record decoder breaks a property: a decoder never panics on a corrupt value, and a value
//! it accepts is canonical (re-encoding gives back exactly the stored bytes, so nothing a
//! reader accepts can be silently rewritten differently).
//!
//! Not a storage API: the decoders stay crate-private; this module only drives them.

use pixelparty_protocol::Geometry;

use crate::canvas::{TileSnapshot, decode_block, decode_geometry, encode_block, encode_geometry};
use crate::records::{
    AuditEntry, Ban, Conversation, Message, PixelRecord, Room, Session, User, decode_time, encode_time, net_from_key,
    net_key,
};

/// Bytes in front of the value: the decoder's selector, then a little-endian `u64` standing
/// for what a real read takes from the key (a sequence, an id, a coordinate pair).
pub const HEADER_LEN: usize = 9;

/// The decoders [`records`] selects from, by `data[0] % DECODERS.len()`.
pub const DECODERS: [&str; 13] = [
    "user",
    "session",
    "ban",
    "audit",
    "room",
    "message",
    "journal_block",
    "pixel_index",
    "geometry",
    "tile",
    "conversation",
    "time",
    "net_key",
];

/// Builds an input for [`records`]: selector, key-derived number, value.
pub fn input(decoder: usize, key: u64, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_LEN + value.len());
    v.push(decoder as u8);
    v.extend_from_slice(&key.to_le_bytes());
    v.extend_from_slice(value);
    v
}

/// Decodes `data[HEADER_LEN..]` with the decoder `data[0]` selects (see [`DECODERS`]); when it
/// decodes, re-encodes the record and asserts the bytes are exactly the input value. Never
/// panics otherwise.
pub fn records(data: &[u8]) {
    let _ = records_decoded(data);
}

/// [`records`], telling whether the value decoded.
pub fn records_decoded(data: &[u8]) -> bool {
    let Some((header, v)) = data.split_first_chunk::<HEADER_LEN>() else {
        return false;
    };
    let key = u64::from_le_bytes(header[1..].try_into().unwrap_or_default());
    let (lo32, hi16, lo16) = (key as u32, (key >> 16) as u16, key as u16);
    let again: Option<Vec<u8>> = match header[0] as usize % DECODERS.len() {
        0 => User::decode(v).ok().map(|r| r.encode()),
        1 => Session::decode(v).ok().map(|r| r.encode()),
        2 => Ban::decode("bans", v).ok().map(|r| r.encode()),
        3 => AuditEntry::decode(key, v).ok().map(|r| {
            assert_eq!(r.seq, key);
            r.encode()
        }),
        4 => Room::decode(v).ok().map(|r| r.encode()),
        5 => Message::decode("messages", key, v).ok().map(|r| r.encode()),
        6 => decode_block(key, v).ok().map(|records| {
            assert!(records.first().is_none_or(|r| r.seq >= key), "block starts before its key");
            assert!(records.windows(2).all(|w| w[0].seq < w[1].seq), "block sequences do not ascend");
            encode_block(&records)
        }),
        7 => PixelRecord::decode_index_value(lo16, hi16, key, v).ok().map(|r| {
            assert_eq!((r.x, r.y, r.seq), (lo16, hi16, key));
            r.encode_index_value().to_vec()
        }),
        8 => decode_geometry(v).ok().map(|g: Geometry| encode_geometry(&g)),
        9 => TileSnapshot::decode(lo32, v).ok().map(|t| t.encode()),
        10 => Conversation::decode(lo32, v).ok().map(|c| c.encode()),
        11 => decode_time("time", v).ok().map(encode_time),
        _ => net_from_key(v).map(|net| net_key(&net)),
    };
    let Some(again) = again else {
        return false;
    };
    assert_eq!(again.as_slice(), v, "{} did not round-trip", DECODERS[header[0] as usize % DECODERS.len()]);
    true
}

/// Valid values of every record kind, one input per decoder at least: the seed corpus of the
/// `storage_records` target (`fuzz/corpus/storage_records/`, written by the smoke test when
/// `PIXELPARTY_WRITE_CORPUS` is set) and the smoke test's own seeds.
pub fn seeds() -> Vec<Vec<u8>> {
    use crate::records::{AuditAction, Role};
    let user =
        User { id: 7, name: "Zoë".into(), role: Role::Admin, password_hash: "$argon2id$v=19$x".into(), created_ms: 1 };
    let ban = Ban { reason: "spam".into(), by: 1, created_ms: 2, expires_ms: Some(3) };
    let audit = AuditEntry {
        seq: 4,
        time_ms: 5,
        actor: 0,
        action: AuditAction::Rollback,
        target: "user 7".into(),
        detail: "0..9".into(),
    };
    let pixels: Vec<PixelRecord> =
        (0..3).map(|i| PixelRecord { seq: 10 + i, x: i as u16, y: 2, colour: 5, user: 7, time_ms: 99 + i }).collect();
    let mut out = vec![
        input(0, 0, &user.encode()),
        input(1, 0, &Session { user: 7, created_ms: 1, expires_ms: 2 }.encode()),
        input(2, 0, &ban.encode()),
        input(2, 0, &Ban { expires_ms: None, ..ban.clone() }.encode()),
        input(3, 4, &audit.encode()),
        input(4, 0, &Room { id: 1, name: "lobby".into(), created_by: 7, created_ms: 3 }.encode()),
        input(5, 9, &Message { seq: 9, author: 7, time_ms: 4, text: "hé".into(), deleted: false }.encode()),
        input(5, 9, &Message { seq: 9, author: 7, time_ms: 4, text: String::new(), deleted: true }.encode()),
        input(6, 10, &encode_block(&pixels)),
        input(6, 0, &encode_block(&[])),
        input(7, (2 << 16) | 1, &pixels[1].encode_index_value()),
        input(11, 0, &encode_time(12345)),
    ];
    if let Ok(g) = Geometry::new(1000, 1000, 4, 256) {
        out.push(input(8, 0, &encode_geometry(&g)));
    }
    out.push(input(9, 3, &TileSnapshot { tile: 3, seq: 12, data: vec![0x12, 0x34, 0, 0xff] }.encode()));
    out.push(input(10, 8, &Conversation { peer: 8, last_seq: 3, last_ms: 77 }.encode()));
    for net in ["10.1.2.0/24", "192.168.1.7/32", "2001:db8::/32", "::1/128"] {
        if let Ok(net) = net.parse() {
            out.push(input(12, 0, &net_key(&net)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_decodes_and_round_trips() {
        let seeds = seeds();
        let mut seen = [false; DECODERS.len()];
        for s in &seeds {
            assert!(records_decoded(s), "seed for {} does not decode", DECODERS[s[0] as usize]);
            seen[s[0] as usize] = true;
        }
        assert!(seen.iter().all(|s| *s), "a decoder without a seed: {seen:?}");
    }
}
