//! Recovery from tile snapshots plus a long journal tail equals a full replay, and survives a
//! reopen of the store.
#![allow(clippy::unwrap_used, missing_docs)]

use pixelparty_protocol::Geometry;
use pixelparty_protocol::canvas::{get_pixel, set_pixel};
use pixelparty_storage::{Durability, Fjall, PixelRecord, StoreConfig, TileSnapshot};

const UPDATES: u64 = 200_000;
const SNAPSHOT_AT: u64 = 50_000;

fn open(path: &std::path::Path) -> Fjall {
    let mut config = StoreConfig::new(path);
    config.durability = Durability::None;
    Fjall::open(config).unwrap()
}

#[test]
fn snapshot_plus_long_tail_recovers_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let g = Geometry::new(256, 256, 4, 64).unwrap();
    let mut model = vec![vec![0u8; g.tile_bytes()]; g.tile_count() as usize];
    let mut seqs = vec![0u64; g.tile_count() as usize];
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    {
        let store = open(dir.path());
        store.run(move |tx| tx.init_canvas(&g)).unwrap();
        let mut seq = 1;
        while seq <= UPDATES {
            let batch: Vec<PixelRecord> = (0..1000)
                .map(|k| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    PixelRecord {
                        seq: seq + k,
                        x: (state % 256) as u16,
                        y: ((state >> 8) % 256) as u16,
                        colour: (state >> 16) as u8 & 15,
                        user: 1,
                        time_ms: seq,
                    }
                })
                .collect();
            for r in &batch {
                let loc = g.locate(r.x.into(), r.y.into()).unwrap();
                set_pixel(&mut model[loc.tile as usize], 4, loc.offset, r.colour);
                seqs[loc.tile as usize] = r.seq;
            }
            seq += batch.len() as u64;
            store.run(move |tx| tx.append_pixels(&batch)).unwrap();
            if seq - 1 == SNAPSHOT_AT {
                let snaps: Vec<TileSnapshot> = model
                    .iter()
                    .zip(&seqs)
                    .enumerate()
                    .map(|(t, (d, s))| TileSnapshot { tile: t as u32, seq: *s, data: d.clone() })
                    .collect();
                store.run(move |tx| tx.save_tiles(&snaps)).unwrap();
            }
        }
    }
    let store = open(dir.path());
    let c = store.recover_canvas(&g).unwrap();
    assert_eq!(c.last_seq, UPDATES);
    assert_eq!(c.tile_seqs, seqs);
    assert!(c.tiles == model, "recovered canvas differs from the model");
    assert!(c.replayed > 0 && c.replayed <= UPDATES - SNAPSHOT_AT + 1000);
    // Spot-check through the inspector too.
    let last = store.journal_entry(UPDATES).unwrap().unwrap();
    let loc = g.locate(last.x.into(), last.y.into()).unwrap();
    assert_eq!(get_pixel(&c.tiles[loc.tile as usize], 4, loc.offset), last.colour);
    assert_eq!(store.pixel_history(last.x, last.y, u64::MAX, 1).unwrap()[0].seq, UPDATES);
}
