//! Entry points for the fuzz targets in `fuzz/` and for the fuzz smoke test run by
//! `cargo test`. Each takes arbitrary bytes and panics only if the codec breaks a property.

use crate::client::ClientFrame;
use crate::codec::{Decoded, WireFrame};
use crate::limits::MAX_FRAME_PAYLOAD;
use crate::server::ServerFrame;

/// Decodes `data` as client frames until it ends or an error occurs. Never panics.
pub fn client_decode(data: &[u8]) {
    for frame in crate::client::client_frames(data) {
        if frame.is_err() {
            break;
        }
    }
}

/// Decodes `data` as server frames until it ends or an error occurs. Never panics.
pub fn server_decode(data: &[u8]) {
    for frame in crate::server::server_frames(data) {
        if frame.is_err() {
            break;
        }
    }
}

/// Decodes every frame at the front of `data` (client frames if the first byte is below
/// `0x80`, server frames otherwise), re-encodes each and asserts the bytes are exactly the
/// input: the encoding is canonical and decode/encode are inverse.
pub fn round_trip(data: &[u8]) {
    if data.first().is_some_and(|b| *b >= 0x80) {
        round_trip_as(data, |f: &ServerFrame<'_>, out: &mut Vec<u8>| f.encode(out));
    } else {
        round_trip_as(data, |f: &ClientFrame<'_>, out: &mut Vec<u8>| f.encode(out));
    }
}

fn round_trip_as<'a, F, E>(data: &'a [u8], encode: E)
where
    F: WireFrame<'a> + std::fmt::Debug,
    E: Fn(&F, &mut Vec<u8>) -> Result<(), crate::EncodeError>,
{
    let mut rest = data;
    let mut out = Vec::new();
    while let Ok(Decoded::Frame { frame, len }) = F::decode(rest) {
        assert!(len <= crate::limits::FRAME_HEADER_LEN + MAX_FRAME_PAYLOAD);
        out.clear();
        if let Err(e) = encode(&frame, &mut out) {
            panic!("decoded frame does not re-encode: {e}: {frame:?}");
        }
        assert_eq!(out.as_slice(), &rest[..len], "re-encoding differs for {frame:?}");
        rest = &rest[len..];
    }
}

/// Deterministic inputs for a smoke run of a fuzz target on stable (`cargo test`): `count`
/// inputs, each either random bytes (one in four) or a mutation of one of `seeds` (bit
/// flips, inserted, removed and overwritten bytes, boundary values, duplicated runs,
/// truncation). No coverage feedback, unlike libFuzzer; it only keeps the targets honest in
/// CI. The same `rng_seed` gives the same inputs.
pub fn smoke_inputs(seeds: &[Vec<u8>], count: usize, rng_seed: u64) -> impl Iterator<Item = Vec<u8>> + '_ {
    let mut rng = Rng(rng_seed | 1);
    (0..count).map(move |i| {
        if i % 4 == 0 || seeds.is_empty() {
            (0..rng.below(300)).map(|_| rng.next() as u8).collect()
        } else {
            let seed = &seeds[rng.below(seeds.len())];
            mutate(seed, &mut rng)
        }
    })
}

/// A xorshift generator: deterministic, no dependency, good enough to mutate seeds.
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

fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    const BOUNDARIES: [u8; 8] = [0x00, 0x01, 0x7d, 0x7e, 0x7f, 0x80, 0xfe, 0xff];
    let mut data = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len());
        match rng.below(6) {
            0 if !data.is_empty() => data[at] ^= 1 << rng.below(8),
            1 => data.insert(rng.below(data.len() + 1), rng.next() as u8),
            2 if !data.is_empty() => {
                data.remove(at);
            }
            3 if !data.is_empty() => data[at] = BOUNDARIES[rng.below(BOUNDARIES.len())],
            4 if !data.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(data.len());
                let run = data[at..end].to_vec();
                let to = rng.below(data.len() + 1);
                data.splice(to..to, run);
            }
            _ => data.truncate(rng.below(data.len() + 1)),
        }
    }
    data
}
