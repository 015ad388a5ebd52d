//! Runs the record-decoder fuzz target's entry function over its committed seed corpus, the
//! in-code seeds and a bounded number of pseudo-random inputs, on stable, as an ordinary test.
//! With `PIXELPARTY_WRITE_CORPUS=1` it (re)writes the seed corpus first.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};

use pixelparty_storage::fuzzing;

/// Inputs beyond the corpus.
const RANDOM_INPUTS: usize = 20_000;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/storage_records")
}

fn corpus() -> Vec<Vec<u8>> {
    let dir = corpus_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    entries.map(|e| std::fs::read(e.unwrap().path()).unwrap()).collect()
}

#[test]
fn storage_records_survives_corpus_and_random_inputs() {
    if std::env::var_os("PIXELPARTY_WRITE_CORPUS").is_some() {
        std::fs::create_dir_all(corpus_dir()).unwrap();
        for (i, seed) in fuzzing::seeds().iter().enumerate() {
            let name = format!("seed-{i:02}-{}", fuzzing::DECODERS[seed[0] as usize]);
            std::fs::write(corpus_dir().join(name), seed).unwrap();
        }
    }
    let mut seeds = corpus();
    assert!(!seeds.is_empty(), "empty corpus");
    let decoded = seeds.iter().filter(|s| fuzzing::records_decoded(s)).count();
    assert!(decoded * 2 >= seeds.len(), "most of the corpus should be valid records ({decoded}/{})", seeds.len());
    seeds.extend(fuzzing::seeds());
    let mut decoded = 0;
    for input in pixelparty_protocol::fuzzing::smoke_inputs(&seeds, RANDOM_INPUTS, 0x5EED_0001) {
        decoded += usize::from(fuzzing::records_decoded(&input));
    }
    // The mutations reach past the first length check: some still decode (and round-trip).
    assert!(decoded > 0, "no mutated input decoded");
}
