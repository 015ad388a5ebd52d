//! Runs the WebSocket reader's fuzz target over its committed seed corpus, the in-code seeds
//! and a bounded number of pseudo-random inputs, on stable, as an ordinary test. With
//! `PIXELPARTY_WRITE_CORPUS=1` it (re)writes the seed corpus first.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};

use pixelparty_gateway::fuzzing;

/// Inputs beyond the corpus.
const RANDOM_INPUTS: usize = 20_000;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/ws_reader")
}

#[test]
fn ws_reader_survives_corpus_and_random_inputs() {
    if std::env::var_os("PIXELPARTY_WRITE_CORPUS").is_some() {
        std::fs::create_dir_all(corpus_dir()).unwrap();
        for (i, seed) in fuzzing::seeds().iter().enumerate() {
            std::fs::write(corpus_dir().join(format!("seed-{i:02}")), seed).unwrap();
        }
    }
    let dir = corpus_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut seeds: Vec<Vec<u8>> = entries.map(|e| std::fs::read(e.unwrap().path()).unwrap()).collect();
    assert!(!seeds.is_empty(), "empty corpus");
    seeds.extend(fuzzing::seeds());
    for seed in &seeds {
        fuzzing::ws_reader(seed);
    }
    for input in pixelparty_protocol::fuzzing::smoke_inputs(&seeds, RANDOM_INPUTS, 0x5EED_0002) {
        fuzzing::ws_reader(&input);
    }
}
