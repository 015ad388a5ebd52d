//! Storage benchmarks: journal append throughput per durability mode (batched, from two
//! submitting threads as the engine's shards do), recovery replay rate, and recent-history
//! read latency.
//!
//! `cargo bench -p pixelparty-bench --bench storage` (figures in `bench/README.md`);
//! `STORAGE_BENCH_SECS=30` for a sustained run.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pixelparty_bench::timing::si;
use pixelparty_protocol::Geometry;
use pixelparty_storage::{Durability, Fjall, Message, PixelRecord, StoreConfig};

const SUBMITTERS: u64 = 2;
const BATCH: u64 = 1000;
/// How long each append run lasts: `STORAGE_BENCH_SECS` (default 4; a longer run includes
/// the flushes and compactions a sustained load pays for).
fn run_for() -> Duration {
    Duration::from_secs(std::env::var("STORAGE_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(4))
}

fn open(path: &std::path::Path, durability: Durability) -> Fjall {
    let mut config = StoreConfig::new(path);
    config.durability = durability;
    Fjall::open(config).unwrap()
}

fn batch(first: u64, g: &Geometry) -> Vec<PixelRecord> {
    (0..BATCH)
        .map(|k| {
            let s = first + k;
            let h = s.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            PixelRecord {
                seq: s,
                x: (h % u64::from(g.width())) as u16,
                y: ((h >> 20) % u64::from(g.height())) as u16,
                colour: (h >> 40) as u8 & 15,
                user: (h >> 48) as u32 & 0xffff,
                time_ms: 1_700_000_000_000 + s / 1000,
            }
        })
        .collect()
}

/// Appends batches from `SUBMITTERS` threads for [`run_for`], each thread keeping up to 4
/// batches in flight (like a shard that keeps serving while its ticks are being made
/// durable). Returns acknowledged updates per second.
fn append(durability: Durability, g: Geometry) -> (f64, Fjall, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), durability);
    let next = Arc::new(AtomicU64::new(1));
    let acked = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let run_for = run_for();
    let threads: Vec<_> = (0..SUBMITTERS)
        .map(|_| {
            let (store, next, acked) = (store.clone(), next.clone(), acked.clone());
            std::thread::spawn(move || {
                // A bounded channel as a semaphore: at most 4 batches in flight per thread.
                let (slots, freed) = crossbeam_channel::bounded::<()>(4);
                while start.elapsed() < run_for {
                    slots.send(()).unwrap();
                    let records = batch(next.fetch_add(BATCH, Ordering::Relaxed), &g);
                    let (acked, freed) = (acked.clone(), freed.clone());
                    store
                        .run_later(records, move |r| {
                            r.unwrap();
                            acked.fetch_add(BATCH, Ordering::Relaxed);
                            let _ = freed.recv();
                        })
                        .unwrap();
                }
                while !slots.is_empty() {
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let rate = acked.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    (rate, store, dir)
}

trait RunLater {
    fn run_later(
        &self,
        records: Vec<PixelRecord>,
        done: impl FnOnce(Result<(), pixelparty_storage::StorageError>) + Send + 'static,
    ) -> Result<(), pixelparty_storage::StorageError>;
}

impl RunLater for Fjall {
    /// Submits, waiting (briefly) while the writer queue is full.
    fn run_later(
        &self,
        records: Vec<PixelRecord>,
        done: impl FnOnce(Result<(), pixelparty_storage::StorageError>) + Send + 'static,
    ) -> Result<(), pixelparty_storage::StorageError> {
        let records = Arc::new(records);
        let done = Arc::new(std::sync::Mutex::new(Some(done)));
        loop {
            let (r, d) = (records.clone(), done.clone());
            match self.submit(
                move |tx| tx.append_pixels(&r),
                move |res| {
                    if let Some(f) = d.lock().unwrap().take() {
                        f(res);
                    }
                },
            ) {
                Err(e) if e.is_overloaded() => std::thread::sleep(Duration::from_micros(200)),
                other => return other,
            }
        }
    }
}

/// Prints the median, 99th percentile and maximum of `lat`.
fn print_latency(what: &str, mut lat: Vec<Duration>) {
    lat.sort();
    println!("{what}: p50 {:?}  p99 {:?}  max {:?}", lat[lat.len() / 2], lat[lat.len() * 99 / 100], lat[lat.len() - 1]);
}

/// Files and bytes under `path`.
fn dir_usage(path: &std::path::Path) -> (u64, u64) {
    let mut total = (0, 0);
    for entry in std::fs::read_dir(path).unwrap().flatten() {
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            let (f, b) = dir_usage(&entry.path());
            total = (total.0 + f, total.1 + b);
        } else {
            total = (total.0 + 1, total.1 + meta.len());
        }
    }
    total
}

fn main() {
    let g = Geometry::new(2048, 2048, 4, 256).unwrap();
    println!("pixelparty storage benchmark ({SUBMITTERS} submitters, batches of {BATCH})");
    let mut keep = None;
    for (name, mode) in [
        ("none", Durability::None),
        ("interval:100", Durability::Interval(Duration::from_millis(100))),
        ("sync (group commit)", Durability::Sync),
    ] {
        let (rate, store, dir) = append(mode, g);
        let s = store.writer_stats();
        let groups = s.groups.load(Ordering::Relaxed).max(1);
        let (l0, tables) = store.pixel_index_tables();
        println!(
            "journal append, {name:<22} {:>10}updates/s acknowledged   ({} groups, mean fsync {} us; pixel index {l0} L0 of {tables} tables)",
            si(rate),
            groups,
            (s.fsync_seconds.sum() * 1e6 / s.fsync_seconds.count().max(1) as f64) as u64
        );
        keep = Some((store, dir));
    }

    let (store, dir) = keep.unwrap();
    store.flush().unwrap();
    drop(store);
    // Reopen, as a restarting server does, so the replay reads from disk.
    let store = open(dir.path(), Durability::Sync);
    let total = store.last_journal_seq().unwrap();
    let t = Instant::now();
    let c = store.recover_canvas(&g).unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!("recovery replay: {} updates in {:.2} s = {}updates/s", c.replayed, secs, si(c.replayed as f64 / secs));
    assert_eq!(c.last_seq, total);
    let (files, bytes) = dir_usage(dir.path());
    println!("data directory after the sync run: {files} files, {:.0} MiB", bytes as f64 / (1 << 20) as f64);

    // Pixel inspector reads on that journal: the newest update of random pixels.
    let mut lat = Vec::new();
    let mut found = 0;
    for i in 0..2000u64 {
        let h = (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let (x, y) = ((h % 2048) as u16, ((h >> 20) % 2048) as u16);
        let t = Instant::now();
        found += store.pixel_history(x, y, u64::MAX, 1).unwrap().len();
        lat.push(t.elapsed());
    }
    print_latency(&format!("pixel inspector (newest update of a random pixel, {found} of 2000 painted)"), lat);

    // Recent-history reads: a room with 100k messages, read the newest 50.
    let messages: Vec<Message> = (1..=100_000)
        .map(|seq| Message {
            seq,
            author: (seq % 50) as u32,
            time_ms: seq,
            text: format!("message number {seq} with some text"),
            deleted: false,
        })
        .collect();
    for chunk in messages.chunks(10_000) {
        let chunk = chunk.to_vec();
        store.run(move |tx| tx.append_room_messages(1, &chunk)).unwrap();
    }
    let mut lat = Vec::new();
    for i in 0..2000 {
        let t = Instant::now();
        let page = store
            .room_history(1, if i % 2 == 0 { u64::MAX } else { 100_001 - (i as u64 * 37 % 90_000) }, 50, |m| {
                m.author != 7
            })
            .unwrap();
        lat.push(t.elapsed());
        assert!(!page.is_empty());
    }
    print_latency("recent history (50 of 100k, one author blocked)", lat);
}
