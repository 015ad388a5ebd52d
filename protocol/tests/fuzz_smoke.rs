//! Runs every fuzz target's entry function over the committed seed corpus and a bounded
//! number of pseudo-random inputs, on stable, as an ordinary test.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;

use pixelparty_protocol::fuzzing;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 3] = [
    ("client_decode", fuzzing::client_decode),
    ("server_decode", fuzzing::server_decode),
    ("round_trip", fuzzing::round_trip),
];

/// Inputs per target beyond the corpus.
const RANDOM_INPUTS: usize = 20_000;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        out.push(std::fs::read(entry.unwrap().path()).unwrap());
    }
    out
}

#[test]
fn fuzz_targets_survive_corpus_and_random_inputs() {
    for (name, target) in TARGETS {
        let seeds = corpus(name);
        assert!(!seeds.is_empty(), "empty corpus for {name}");
        for seed in &seeds {
            target(seed);
        }
        for input in fuzzing::smoke_inputs(&seeds, RANDOM_INPUTS, 0x9E37_79B9_7F4A_7C15) {
            target(&input);
        }
    }
}
