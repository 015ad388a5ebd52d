//! Pure routing: which shard is the home of a tile, a room or a direct
//! conversation.
//!
//! Plain functions of the id and the shard count, so every shard (and every test) computes the
//! same answer without asking anyone.

/// Index of a shard.
pub type ShardId = usize;

/// Home shard of a canvas tile.
pub fn tile_home(tile: u32, shards: usize) -> ShardId {
    tile as usize % shards
}

/// Home shard of a room.
pub fn room_home(room: u32, shards: usize) -> ShardId {
    // Rooms are few and ids dense: spread them from the other end than tiles so that
    // room 1 and tile 1 do not share a shard on small canvases.
    (shards - 1) - (room as usize % shards)
}

/// Home shard of the direct conversation between `a` and `b` (the same both ways).
pub fn direct_home(a: u32, b: u32, shards: usize) -> ShardId {
    let (lo, hi) = (u64::from(a.min(b)), u64::from(a.max(b)));
    ((lo << 32 | hi) % shards as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn homes_are_in_range_and_spread() {
        for shards in 1..=8 {
            let mut seen = vec![0; shards];
            for id in 0..800u32 {
                assert!(tile_home(id, shards) < shards);
                seen[room_home(id, shards)] += 1;
                assert_eq!(direct_home(id, id / 3, shards), direct_home(id / 3, id, shards));
                assert!(direct_home(id, id + 1, shards) < shards);
            }
            let (min, max) = (seen.iter().min().unwrap(), seen.iter().max().unwrap());
            assert!(max - min <= 1, "{seen:?}");
        }
    }
}
