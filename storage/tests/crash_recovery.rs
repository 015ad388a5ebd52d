//! Crash test: a child process writes pixels, room messages and tile snapshots in `sync` mode
//! from several threads and prints every acknowledged write; the parent kills it with SIGKILL
//! at a random point, reopens the store and checks that every acknowledged write is there and
//! that the canvas recovered from snapshots + journal equals a full replay, byte for byte.
//! Several rounds run on the same store.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use pixelparty_protocol::Geometry;
use pixelparty_protocol::canvas::set_pixel;
use pixelparty_storage::{Durability, Fjall, Message, PixelRecord, StoreConfig, TileSnapshot};

const CHILD_ENV: &str = "PIXELPARTY_CRASH_CHILD_DIR";
const ROUNDS: usize = 5;
const ROOM: u32 = 1;

fn geometry() -> Geometry {
    Geometry::new(64, 64, 4, 16).unwrap()
}

fn open(dir: &std::path::Path) -> Fjall {
    let mut config = StoreConfig::new(dir);
    config.durability = Durability::Sync;
    config.cache_bytes = 4 << 20;
    // A small index tail: the pixel index is ingested every few hundred updates, so kills land
    // before, during and after ingestions.
    config.index_tail_max = 64;
    Fjall::open(config).unwrap()
}

/// A tiny deterministic generator (no dependency on a clock or OS randomness in the child).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The child: runs until killed. Not a real test unless the environment says so.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let store = open(std::path::Path::new(&dir));
    let g = geometry();
    store.run(move |tx| tx.init_canvas(&g)).unwrap();
    let next_seq = Arc::new(AtomicU64::new(store.last_journal_seq().unwrap() + 1));
    let next_msg = Arc::new(AtomicU64::new(store.room_last_seq(ROOM).unwrap() + 1));
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let mut threads = Vec::new();
    for t in 0..3u64 {
        let (store, next_seq, next_msg, out) = (store.clone(), next_seq.clone(), next_msg.clone(), out.clone());
        threads.push(std::thread::spawn(move || {
            let mut rng = Rng(0x1234_5678 + t * 7919 + next_seq.load(Ordering::Relaxed));
            for i in 0u64.. {
                let n = 1 + rng.next() % 8;
                let first = next_seq.fetch_add(n, Ordering::SeqCst);
                let batch: Vec<PixelRecord> = (0..n)
                    .map(|k| PixelRecord {
                        seq: first + k,
                        x: (rng.next() % 64) as u16,
                        y: (rng.next() % 64) as u16,
                        colour: (rng.next() % 16) as u8,
                        user: t as u32 + 1,
                        time_ms: 1000 + first,
                    })
                    .collect();
                let acked = batch.clone();
                store.run(move |tx| tx.append_pixels(&batch)).unwrap();
                let mut lines = String::new();
                for r in &acked {
                    lines.push_str(&format!("P {} {} {} {}\n", r.seq, r.x, r.y, r.colour));
                }
                if t == 0 {
                    // Room messages: one writer thread owns the room's sequence, like the engine.
                    let seq = next_msg.fetch_add(1, Ordering::SeqCst);
                    let m = Message { seq, author: 1, time_ms: seq, text: format!("message {seq}"), deleted: false };
                    store.run(move |tx| tx.append_room_messages(ROOM, &[m])).unwrap();
                    lines.push_str(&format!("M {seq}\n"));
                }
                if t == 1 && i % 25 == 24 {
                    // Snapshot every tile from the committed state, inside one writer job.
                    store
                        .run(move |tx| {
                            let c = tx.recover_canvas(&g)?;
                            let snaps: Vec<TileSnapshot> = c
                                .tiles
                                .into_iter()
                                .zip(c.tile_seqs)
                                .enumerate()
                                .map(|(tile, (data, seq))| TileSnapshot { tile: tile as u32, seq, data })
                                .collect();
                            tx.save_tiles(&snaps)
                        })
                        .unwrap();
                    lines.push_str("S\n");
                }
                let mut out = out.lock().unwrap();
                out.write_all(lines.as_bytes()).unwrap();
                out.flush().unwrap();
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
}

fn full_replay(store: &Fjall, g: &Geometry) -> (Vec<Vec<u8>>, Vec<u64>) {
    let mut tiles = vec![vec![0u8; g.tile_bytes()]; g.tile_count() as usize];
    let mut seqs = vec![0u64; g.tile_count() as usize];
    let journal = store.journal_after(0, usize::MAX).unwrap();
    for r in journal {
        let loc = g.locate(u32::from(r.x), u32::from(r.y)).unwrap();
        set_pixel(&mut tiles[loc.tile as usize], g.bpp(), loc.offset, r.colour);
        seqs[loc.tile as usize] = r.seq;
    }
    (tiles, seqs)
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked_pixels: HashMap<u64, (u16, u16, u8)> = HashMap::new();
    let mut acked_messages = Vec::new();
    let mut rng = Rng(std::process::id() as u64 | 1);
    let mut snapshots_seen = 0;
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let kill_after = 150 + (rng.next() % 600) as usize;
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let mut acks = 0;
        while acks < kill_after {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 {
                panic!("child exited early in round {round}");
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                ["P", seq, x, y, c] => {
                    acked_pixels
                        .insert(seq.parse().unwrap(), (x.parse().unwrap(), y.parse().unwrap(), c.parse().unwrap()));
                    acks += 1;
                }
                ["M", seq] => acked_messages.push(seq.parse::<u64>().unwrap()),
                ["S"] => snapshots_seen += 1,
                _ => {} // test harness chatter
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let store = open(dir.path());
        let g = geometry();
        for (seq, (x, y, c)) in &acked_pixels {
            let r = store
                .journal_entry(*seq)
                .unwrap()
                .unwrap_or_else(|| panic!("round {round}: acknowledged pixel {seq} lost"));
            assert_eq!((r.x, r.y, r.colour), (*x, *y, *c), "round {round}: pixel {seq} changed");
        }
        let indexed = |store: &Fjall| {
            for (seq, (x, y, c)) in &acked_pixels {
                let h = store.pixel_history(*x, *y, seq + 1, 1).unwrap();
                assert_eq!(
                    h.first().map(|r| (r.seq, r.colour)),
                    Some((*seq, *c)),
                    "round {round}: acknowledged pixel {seq} missing from the pixel index"
                );
            }
        };
        indexed(&store);
        for seq in &acked_messages {
            let m = store
                .room_message(ROOM, *seq)
                .unwrap()
                .unwrap_or_else(|| panic!("round {round}: acknowledged message {seq} lost"));
            assert_eq!(m.text, format!("message {seq}"));
        }
        let recovered = store.recover_canvas(&g).unwrap();
        let (tiles, seqs) = full_replay(&store, &g);
        assert_eq!(recovered.tile_seqs, seqs, "round {round}: tile cursors differ from a full replay");
        assert!(recovered.tiles == tiles, "round {round}: canvas differs from a full replay");
        store.settle_index().unwrap();
        assert_eq!(store.index_tail_len(), 0);
        indexed(&store);
        drop(store);
    }
    assert!(acked_pixels.len() > ROUNDS * 150);
    assert!(snapshots_seen > 0, "the rounds should include tile snapshots");
}
