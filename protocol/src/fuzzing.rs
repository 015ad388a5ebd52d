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
