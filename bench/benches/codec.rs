//! Codec micro-benchmark: encode and decode throughput of pixel batches and chat frames.
//!
//! `cargo bench -p pixelparty-bench --bench codec` (figures in `bench/README.md`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use pixelparty_bench::timing::{measure, si};
use pixelparty_protocol::client::SendRoom;
use pixelparty_protocol::server::{Pixels, RoomMessage};
use pixelparty_protocol::{ClientFrame, Decoded, PixelUpdate, PixelsHead, ServerFrame, client_frames, server_frames};

const BUDGET: Duration = Duration::from_secs(2);

fn report(name: &str, unit: &str, ops: f64, bytes_per_op: f64) {
    println!("{name:<40} {:>12}{unit}/s   {:>10}B/s", si(ops), si(ops * bytes_per_op));
}

fn pixels(batch: usize) {
    let updates: Vec<PixelUpdate> = (0..batch).map(|i| PixelUpdate::new((i * 7) as u16, (i % 16) as u8)).collect();
    let frame = ServerFrame::Pixels(Pixels { head: PixelsHead::new(3, 100, 100 + batch as u64), updates: &updates });
    let frame_len = frame.encoded_len();
    let frames_per_msg = (64 * 1024 / frame_len).max(1);
    let mut buf = BytesMut::with_capacity(frame_len * frames_per_msg);
    let rate = measure(BUDGET, (frames_per_msg * batch) as u64, || {
        buf.clear();
        for _ in 0..frames_per_msg {
            frame.encode(&mut buf).unwrap();
        }
        black_box(&buf);
    });
    report(&format!("encode Pixels ({batch}/frame)"), "updates", rate.median_per_s, 3.0);

    let msg = buf.clone().freeze();
    let rate = measure(BUDGET, (frames_per_msg * batch) as u64, || {
        let mut sum = 0u64;
        for f in server_frames(&msg) {
            if let Ok(ServerFrame::Pixels(p)) = f {
                for u in p.updates {
                    sum += u64::from(u.colour());
                }
            }
        }
        black_box(sum);
    });
    report(&format!("decode+apply Pixels ({batch}/frame)"), "updates", rate.median_per_s, 3.0);
}

fn chat() {
    let text = "hello everyone, this is a typical chat message of moderate length";
    let frame = ServerFrame::RoomMessage(RoomMessage {
        room: 1,
        seq: 123_456,
        author: 42,
        time_ms: 1_700_000_000_000,
        author_name: "alice",
        text,
    });
    let n = 1000;
    let mut buf = BytesMut::with_capacity(frame.encoded_len() * n);
    let rate = measure(BUDGET, n as u64, || {
        buf.clear();
        for _ in 0..n {
            frame.encode(&mut buf).unwrap();
        }
        black_box(&buf);
    });
    report("encode RoomMessage", "frames", rate.median_per_s, frame.encoded_len() as f64);
    let msg = buf.clone().freeze();
    let rate = measure(BUDGET, n as u64, || {
        let mut total = 0usize;
        for f in server_frames(&msg) {
            if let Ok(ServerFrame::RoomMessage(m)) = f {
                total += m.text.len();
            }
        }
        black_box(total);
    });
    report("decode RoomMessage", "frames", rate.median_per_s, frame.encoded_len() as f64);

    let send = ClientFrame::SendRoom(SendRoom { req: 9, room: 1, text });
    let mut one = Vec::new();
    send.encode(&mut one).unwrap();
    let rate = measure(BUDGET, n as u64, || {
        for _ in 0..n {
            let d = ClientFrame::decode(black_box(&one)).unwrap();
            black_box(matches!(d, Decoded::Frame { .. }));
        }
    });
    report("decode SendRoom (client)", "frames", rate.median_per_s, one.len() as f64);
    let many: Vec<u8> = one.iter().copied().cycle().take(one.len() * n).collect();
    let rate = measure(BUDGET, n as u64, || {
        black_box(client_frames(&many).filter(Result::is_ok).count());
    });
    report("decode SendRoom x1000 in one message", "frames", rate.median_per_s, one.len() as f64);
}

fn main() {
    println!("pixelparty codec micro-benchmark (median of {BUDGET:?} per line)");
    for batch in [1, 16, 256, 4096] {
        pixels(batch);
    }
    chat();
}
