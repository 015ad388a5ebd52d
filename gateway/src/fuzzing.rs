//! Entry points for the gateway's fuzz target in `fuzz/` and for its smoke test run by `cargo
//! test` (`tests/fuzz_smoke.rs`): the sans-IO WebSocket reader, fed arbitrary bytes in
//! arbitrary chunkings. Each panics only if the reader breaks a property.

use pixelparty_protocol::limits::MAX_TRANSPORT_MESSAGE;

use crate::ws::reader::{MAX_FRAME_HEADER, WsEvent, WsReader};

/// Longest chunk a chunking byte can ask for (`0` asks for this); others ask for their value.
const LONG_CHUNK: usize = 4096;

/// An event with its bytes copied out, to compare two runs.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Message(Vec<u8>),
    Ping(Vec<u8>),
    Pong,
    Close(Option<u16>),
    Fail(u16),
}

/// Splits `data` into the chunk sizes and the byte stream: `data[0] % 8` chunk-size bytes
/// follow it (none: the stream comes in one piece), then the stream.
fn chunking(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return (&[], &[]);
    };
    rest.split_at((n as usize % 8).min(rest.len()))
}

/// Feeds `stream` to a fresh reader in chunks of the given sizes (cycled), checking every
/// event and the reader's buffer against the limits as it goes.
fn run(stream: &[u8], sizes: &[u8]) -> Vec<Seen> {
    let mut reader = WsReader::default();
    let mut seen = Vec::new();
    let mut ended = false;
    let mut pos = 0;
    let mut turn = 0;
    while pos < stream.len() {
        let size = match sizes.get(turn % sizes.len().max(1)) {
            None => stream.len(),
            Some(0) => LONG_CHUNK,
            Some(&b) => b as usize,
        };
        turn += 1;
        let end = (pos + size).min(stream.len());
        // The reader unmasks in place, as it does in the session's scratch buffer.
        let mut chunk = stream[pos..end].to_vec();
        pos = end;
        reader.feed(&mut chunk, &mut |event| {
            assert!(!ended, "an event after the session ended: {event:?}");
            ended = event.close_answer().is_some();
            seen.push(match event {
                WsEvent::Message(m) => {
                    assert!(m.len() <= MAX_TRANSPORT_MESSAGE, "a message of {} bytes", m.len());
                    Seen::Message(m.to_vec())
                }
                WsEvent::Ping(p) => {
                    assert!(p.len() <= 125, "a ping of {} bytes", p.len());
                    Seen::Ping(p.to_vec())
                }
                WsEvent::Pong => Seen::Pong,
                WsEvent::Close(code) => {
                    assert!(code.is_none_or(crate::ws::close_code::is_valid), "close code {code:?} passed");
                    Seen::Close(code)
                }
                WsEvent::Fail(code, _) => Seen::Fail(code),
            });
        });
        assert!(reader.buffered() <= MAX_TRANSPORT_MESSAGE + MAX_FRAME_HEADER, "{} bytes held", reader.buffered());
    }
    if ended {
        assert_eq!(reader.buffered(), 0, "an ended reader holds nothing");
    }
    seen
}

/// Decodes `data` (chunk sizes, then a byte stream of client frames; see [`chunking`]) twice:
/// in one piece and in the given chunks. Never panics unless the reader does, reports a
/// message or ping over its limit, reports anything after a close or failure, holds more
/// than one message and frame header, or reports different events for different chunkings
/// of the same bytes.
pub fn ws_reader(data: &[u8]) {
    let (sizes, stream) = chunking(data);
    let whole = run(stream, &[]);
    if !sizes.is_empty() {
        assert_eq!(run(stream, sizes), whole, "the chunking changed the events");
    }
}

/// A masked client frame as a browser would send it (`first`: FIN, RSV and opcode bits).
pub(crate) fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![first];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n < 65536 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Inputs for [`ws_reader`]: the seed corpus of the `ws_reader` target
/// (`fuzz/corpus/ws_reader/`, written by the smoke test when `PIXELPARTY_WRITE_CORPUS` is set)
/// and the smoke test's own seeds. Whole, fragmented and interleaved messages, every control
/// frame, and each refusal (text, unmasked, reserved bits and opcodes, bad close frames, an
/// oversize length), in one piece, byte by byte and in mixed chunks.
pub fn seeds() -> Vec<Vec<u8>> {
    let (bin, text, cont, close, ping, pong) = (0x82, 0x81, 0x80, 0x88, 0x89, 0x8a);
    let frames: Vec<Vec<u8>> = vec![
        client_frame(bin, b"\x00\x01hello"),
        [client_frame(0x02, b"he"), client_frame(ping, b"p"), client_frame(cont, b"llo")].concat(),
        [client_frame(0x02, b""), client_frame(0x00, &[7; 300]), client_frame(cont, &[])].concat(),
        [client_frame(pong, b"x"), client_frame(bin, &[1; 126]), client_frame(close, &[0x03, 0xe8])].concat(),
        [client_frame(close, &[0x0f, 0xa0, b'o', b'k']), client_frame(bin, b"late")].concat(),
        client_frame(bin, &[9; 70_000]),
        client_frame(text, b"text"),
        client_frame(bin | 0x40, b"rsv1"),
        client_frame(0x83, b"reserved"),
        client_frame(0x8b, b""),
        client_frame(cont, b"nothing to continue"),
        [client_frame(0x02, b"a"), client_frame(bin, b"b")].concat(),
        client_frame(ping, &[0; 126]),
        client_frame(0x09, b"fragmented ping"),
        client_frame(close, &[0x03]),
        client_frame(close, &[0x03, 0xed]),
        client_frame(close, &[0x03, 0xe8, 0xff]),
        vec![0x82, 0x05, b'h', b'e', b'l', b'l', b'o'],
        [vec![0x82, 0xff], ((MAX_TRANSPORT_MESSAGE + 1) as u64).to_be_bytes().to_vec(), vec![0; 4]].concat(),
        [vec![0x82, 0xff], (1u64 << 63).to_be_bytes().to_vec(), vec![0; 4]].concat(),
    ];
    let chunkings: [&[u8]; 4] = [&[0], &[1, 1], &[3, 2, 7, 0], &[2, 200, 13]];
    let mut out = Vec::new();
    for (i, frames) in frames.iter().enumerate() {
        // Byte-by-byte feeding of the big message would make every mutation of it slow.
        let sizes = if frames.len() > 4096 { &[0, 200] } else { chunkings[i % chunkings.len()] };
        let mut input = vec![sizes.len() as u8];
        input.extend_from_slice(sizes);
        input.extend_from_slice(frames);
        out.push(input);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_pass_and_chunking_does_not_matter() {
        for seed in seeds() {
            ws_reader(&seed);
        }
        // The same frames byte by byte.
        for seed in seeds() {
            let (_, stream) = chunking(&seed);
            assert_eq!(run(stream, &[1]), run(stream, &[]));
        }
    }
}
