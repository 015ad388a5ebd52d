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

/// A small xorshift generator: deterministic, no dependency, good enough to mutate seeds.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Mutates a seed the way a fuzzer would: flip, insert, delete, splice a length field.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(5) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(data.len() + 1);
                data.insert(i, rng.next() as u8);
            }
            2 if !data.is_empty() => {
                let i = rng.below(data.len());
                data.remove(i);
            }
            3 if data.len() >= 5 => {
                let len = (rng.next() % 300) as u32;
                data[1..5].copy_from_slice(&len.to_le_bytes());
            }
            _ => data.truncate(rng.below(data.len() + 1)),
        }
    }
    data
}

#[test]
fn fuzz_targets_survive_corpus_and_random_inputs() {
    for (name, target) in TARGETS {
        let seeds = corpus(name);
        assert!(!seeds.is_empty(), "empty corpus for {name}");
        for seed in &seeds {
            target(seed);
        }
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for i in 0..RANDOM_INPUTS {
            let input = if i % 4 == 0 {
                (0..rng.below(256)).map(|_| rng.next() as u8).collect()
            } else {
                mutate(&seeds[rng.below(seeds.len())], &mut rng)
            };
            target(&input);
        }
    }
}
