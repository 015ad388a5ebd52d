//! Byte-for-byte convergence during a random paint storm from many clients on every shard:
//! a subscriber from the start, a late joiner, a client that disconnects and resumes from its
//! cursors (from the ring or, past it, whole tiles), and a client that starts from a
//! mid-storm snapshot. Plus per-pixel order: every observer sees a pixel's updates in the
//! order the store journaled them.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::*;
use pixelparty_engine::harness::{Got, user};
use pixelparty_protocol::ClientFrame;
use pixelparty_protocol::client::Paint;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn observers_converge_during_a_paint_storm() {
    let mut config = config();
    config.ring_per_tile = 16; // small, so resuming falls back to whole tiles sometimes
    let (_dir, mut h) = harness(config);
    let painters: Vec<_> = (0..12).map(|i| h.connect(i % 3, user(100 + i as u32, "painter"))).collect();
    let early = h.connect(0, user(1, "early"));
    subscribe_fresh(&mut h, early);
    let resumer = h.connect(1, user(2, "resumer"));
    subscribe_fresh(&mut h, resumer);
    h.drive();

    let mut rng = Rng(0xDEAD_BEEF);
    let (mut late, mut from_snapshot, mut resumed) = (None, None, Vec::new());
    let rounds = 60;
    let mut req = 0;
    let mut away = resumer;
    for round in 0..rounds {
        for &p in &painters {
            req += 1;
            let (x, y) = if rng.next().is_multiple_of(4) {
                (5, 5)
            } else {
                ((rng.next() % 128) as u16, (rng.next() % 128) as u16)
            };
            let colour = (rng.next() % 16) as u8;
            h.send(p, &ClientFrame::Paint(Paint { req, x, y, colour }));
            if rng.next().is_multiple_of(5) {
                h.drive();
            }
        }
        h.drive();
        match round {
            // Away for 25 rounds (~300 paints, beyond a 16-entry ring), then for 1 round.
            15 | 50 => h.disconnect(away),
            40 | 51 => {
                let c = h.connect(2, user(2, "resumer"));
                let held = h.client(away).tiles.clone();
                for (tile, (data, seq)) in held {
                    h.seed(c, tile, data, seq);
                }
                subscribe_all(&mut h, c);
                h.drive();
                let got = h.client(c).got.clone();
                let from_ring = got.iter().filter(|g| matches!(g, Got::Pixels { .. })).count();
                let whole = got.iter().filter(|g| matches!(g, Got::TileData { .. })).count();
                if round == 40 {
                    assert!(whole > 0, "a long absence reloads tiles the ring no longer covers");
                } else {
                    assert!(from_ring > 0 && whole == 0, "a short absence resumes from the ring");
                }
                assert_converged(&mut h, c, "resumed client");
                resumed.push(c);
                away = c;
            }
            20 => {
                let c = h.connect(2, user(3, "late"));
                subscribe_fresh(&mut h, c);
                late = Some(c);
            }
            30 => {
                // Snapshot as the HTTP endpoint serves it, then subscribe with its cursors.
                let snapshot = h.canvas();
                let c = h.connect(1, user(4, "snapshot"));
                for (tile, (data, seq)) in snapshot {
                    h.seed(c, tile, data, seq);
                }
                subscribe_all(&mut h, c);
                from_snapshot = Some(c);
            }
            _ => {}
        }
    }
    h.drive();
    let accepted: usize = painters.iter().map(|p| acks(&h.take(*p)).len()).sum();
    assert_eq!(accepted, 12 * rounds, "every paint acknowledged (no cooldown)");
    assert_converged(&mut h, early, "early subscriber");
    assert_converged(&mut h, late.unwrap(), "late joiner");
    assert_converged(&mut h, from_snapshot.unwrap(), "snapshot + cursors");
    assert_converged(&mut h, *resumed.last().unwrap(), "resumed client at the end");

    // Per-pixel order: the early subscriber saw pixel (5, 5)'s updates in journal order.
    let g = h.shared.config.geometry;
    let loc = g.locate(5, 5).unwrap();
    let seen: Vec<u8> = h
        .client(early)
        .got
        .iter()
        .filter_map(|got| match got {
            Got::Pixels { tile, updates, .. } if *tile == loc.tile => Some(updates.clone()),
            _ => None,
        })
        .flatten()
        .filter(|(o, _)| *o == loc.offset)
        .map(|(_, c)| c)
        .collect();
    let mut journal: Vec<u8> =
        h.store().wait(|b| b.pixel_history(5, 5, u64::MAX, 10_000)).unwrap().into_iter().map(|r| r.colour).collect();
    journal.reverse();
    assert!(journal.len() > 50, "the hot pixel was painted often");
    assert_eq!(seen, journal, "updates of one pixel arrive in the order they were applied");
}
