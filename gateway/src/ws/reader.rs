//! The sans-IO WebSocket codec of a session: [`WsReader`] parses client frames (tungstenite's
//! frame-header codec underneath), and [`put_frame`] / [`close_payload`] build server frames.
//!
//! No sockets, no clock, no engine: bytes in, [`WsEvent`]s out, so it can be unit-tested,
//! fuzzed and driven by the Autobahn echo server exactly as the session drives it. What a
//! session does with the events (hand messages to the engine, answer pings) is
//! [`session`](super::session)'s business.

use std::io::Cursor;

use pixelparty_protocol::limits::MAX_TRANSPORT_MESSAGE;
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

/// WebSocket close codes used besides the protocol's
/// [`CloseReason`](pixelparty_protocol::CloseReason) codes.
pub mod close_code {
    /// Normal closure: the answer to a peer's close.
    pub const NORMAL: u16 = 1000;
    /// Protocol error (bad framing).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// Text messages are not accepted.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// A close frame's reason is not UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A message over the size limit.
    pub const MESSAGE_TOO_BIG: u16 = 1009;

    /// Whether a peer may send `code` in a close frame (RFC 6455 7.4 and the IANA registry):
    /// the defined codes except those reserved for local use (1004 to 1006, 1015), and the
    /// 3000 to 4999 range for libraries and applications.
    pub fn is_valid(code: u16) -> bool {
        matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

/// Largest control frame payload (RFC 6455).
const MAX_CONTROL: u64 = 125;

/// Longest frame header: 2 bytes, an 8-byte length, a 4-byte mask.
pub const MAX_FRAME_HEADER: usize = 14;

/// What the reader found in the bytes it was fed.
#[derive(Debug, PartialEq, Eq)]
pub enum WsEvent<'a> {
    /// A whole binary message.
    Message(&'a [u8]),
    /// A ping with its payload (answer with a pong).
    Ping(&'a [u8]),
    /// A pong.
    Pong,
    /// The peer closes (with its code, if any).
    Close(Option<u16>),
    /// The peer broke the rules: close with this code and reason.
    Fail(u16, &'static str),
}

impl WsEvent<'_> {
    /// The close frame (code, reason) to send in answer to this event, if it ends the
    /// session: a peer's close is answered with a normal close, a failure with its code.
    pub fn close_answer(&self) -> Option<(u16, &'static str)> {
        match *self {
            Self::Close(_) => Some((close_code::NORMAL, "bye")),
            Self::Fail(code, why) => Some((code, why)),
            Self::Message(_) | Self::Ping(_) | Self::Pong => None,
        }
    }
}

/// Sans-IO parser of client frames: unmasks, reassembles fragmented messages, enforces the
/// message size limit before buffering, refuses text, unmasked and malformed frames from their
/// header, and checks close frames (code, UTF-8 reason).
#[derive(Debug, Default)]
pub struct WsReader {
    /// Bytes of a frame not yet complete (empty while idle).
    pending: Vec<u8>,
    /// A fragmented message being reassembled (empty while idle).
    message: Vec<u8>,
    in_message: bool,
    failed: bool,
}

enum Step {
    Need,
    Consumed(usize),
}

impl WsReader {
    /// Feeds received bytes (unmasked in place) and reports events in order. After a `Fail`
    /// or `Close`, nothing more is reported.
    pub fn feed(&mut self, data: &mut [u8], on: &mut dyn FnMut(WsEvent<'_>)) {
        if self.failed {
            return;
        }
        if self.pending.is_empty() {
            let used = self.parse(data, on);
            if !self.failed && used < data.len() {
                self.pending.extend_from_slice(&data[used..]);
            }
        } else {
            let mut buf = std::mem::take(&mut self.pending);
            buf.extend_from_slice(data);
            let used = self.parse(&mut buf, on);
            buf.drain(..used);
            if !self.failed {
                self.pending = buf;
            }
        }
        if self.failed {
            // Nothing more will be read: let the buffers go now rather than with the session.
            self.message = Vec::new();
        }
        if self.pending.is_empty() && self.pending.capacity() > 0 {
            self.pending = Vec::new(); // Idle sessions hold no buffer.
        }
    }

    /// Bytes held between calls: a partial frame plus a partial fragmented message. Zero while
    /// idle and once ended; never more than [`MAX_TRANSPORT_MESSAGE`] plus one frame header.
    pub fn buffered(&self) -> usize {
        self.pending.len() + self.message.len()
    }

    fn parse(&mut self, buf: &mut [u8], on: &mut dyn FnMut(WsEvent<'_>)) -> usize {
        let mut pos = 0;
        while !self.failed {
            match self.frame(&mut buf[pos..], on) {
                Step::Need => break,
                Step::Consumed(n) => pos += n,
            }
        }
        pos
    }

    fn fail(&mut self, on: &mut dyn FnMut(WsEvent<'_>), code: u16, why: &'static str) -> Step {
        self.failed = true;
        on(WsEvent::Fail(code, why));
        Step::Need
    }

    fn frame(&mut self, buf: &mut [u8], on: &mut dyn FnMut(WsEvent<'_>)) -> Step {
        let mut cursor = Cursor::new(&*buf);
        let (header, len) = match FrameHeader::parse(&mut cursor) {
            Ok(Some(h)) => h,
            Ok(None) => return Step::Need,
            Err(_) => return self.fail(on, close_code::PROTOCOL_ERROR, "bad frame header"),
        };
        let head = cursor.position() as usize;
        let Some(mask) = header.mask else {
            return self.fail(on, close_code::PROTOCOL_ERROR, "client frames must be masked");
        };
        if header.rsv1 || header.rsv2 || header.rsv3 {
            return self.fail(on, close_code::PROTOCOL_ERROR, "no extensions were negotiated");
        }
        // Whatever the header decides is decided before the payload is waited for: a refused
        // frame is never buffered.
        let refusal = match header.opcode {
            OpCode::Data(Data::Binary) if !self.in_message => None,
            OpCode::Data(Data::Continue) if self.in_message => None,
            OpCode::Data(Data::Text) if !self.in_message => {
                Some((close_code::UNSUPPORTED_DATA, "binary messages only"))
            }
            OpCode::Data(_) => Some((close_code::PROTOCOL_ERROR, "unexpected data frame")),
            OpCode::Control(Control::Ping | Control::Pong | Control::Close) => None,
            OpCode::Control(_) => Some((close_code::PROTOCOL_ERROR, "unknown control frame")),
        };
        if let Some((code, why)) = refusal {
            return self.fail(on, code, why);
        }
        let control = matches!(header.opcode, OpCode::Control(_));
        if control && (len > MAX_CONTROL || !header.is_final) {
            return self.fail(on, close_code::PROTOCOL_ERROR, "bad control frame");
        }
        let limit = (MAX_TRANSPORT_MESSAGE - self.message.len()) as u64;
        if !control && len > limit {
            return self.fail(on, close_code::MESSAGE_TOO_BIG, "message too big");
        }
        let total = head + len as usize;
        if buf.len() < total {
            return Step::Need;
        }
        let payload = &mut buf[head..total];
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i & 3];
        }
        match header.opcode {
            OpCode::Data(Data::Binary) => {
                if header.is_final {
                    on(WsEvent::Message(payload));
                } else {
                    self.in_message = true;
                    self.message.extend_from_slice(payload);
                }
            }
            OpCode::Data(Data::Continue) => {
                self.message.extend_from_slice(payload);
                if header.is_final {
                    self.in_message = false;
                    let message = std::mem::take(&mut self.message);
                    on(WsEvent::Message(&message));
                }
            }
            OpCode::Control(Control::Ping) => on(WsEvent::Ping(payload)),
            OpCode::Control(Control::Pong) => on(WsEvent::Pong),
            OpCode::Control(Control::Close) => {
                let code = match payload {
                    [] => None,
                    [hi, lo, reason @ ..] => {
                        let code = u16::from_be_bytes([*hi, *lo]);
                        if !close_code::is_valid(code) {
                            return self.fail(on, close_code::PROTOCOL_ERROR, "invalid close code");
                        }
                        if std::str::from_utf8(reason).is_err() {
                            return self.fail(on, close_code::INVALID_PAYLOAD, "close reason is not utf-8");
                        }
                        Some(code)
                    }
                    [_] => return self.fail(on, close_code::PROTOCOL_ERROR, "close payload of one byte"),
                };
                self.failed = true;
                on(WsEvent::Close(code));
            }
            // Refused above, from the header.
            OpCode::Data(_) | OpCode::Control(_) => {
                return self.fail(on, close_code::PROTOCOL_ERROR, "unexpected frame");
            }
        }
        Step::Consumed(total)
    }
}

/// Appends a server frame (unmasked) to `out`.
pub fn put_frame(out: &mut Vec<u8>, opcode: OpCode, payload: &[&[u8]]) {
    let len: usize = payload.iter().map(|p| p.len()).sum();
    let header = FrameHeader { is_final: true, rsv1: false, rsv2: false, rsv3: false, opcode, mask: None };
    // Writing into a Vec cannot fail.
    let _ = header.format(len as u64, out);
    for p in payload {
        out.extend_from_slice(p);
    }
}

/// The payload of a close frame: the code, then the reason cut to at most 120 bytes on a
/// character boundary (a control frame carries 125 bytes at most, and the reason must stay
/// UTF-8).
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(&reason.as_bytes()[..end]);
    p
}

/// Longest close reason [`close_payload`] sends.
const MAX_CLOSE_REASON: usize = 120;
const _: () = assert!(2 + MAX_CLOSE_REASON as u64 <= MAX_CONTROL);

#[cfg(test)]
mod tests {
    use super::*;

    fn client_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        crate::fuzzing::client_frame((if fin { 0x80 } else { 0 }) | opcode, payload)
    }

    fn events(reader: &mut WsReader, bytes: &[u8]) -> Vec<String> {
        let mut got = Vec::new();
        reader.feed(&mut bytes.to_vec(), &mut |e| got.push(format!("{e:?}")));
        got
    }

    #[test]
    fn whole_split_and_fragmented_messages() {
        let mut r = WsReader::default();
        let f = client_frame(0x2, true, b"hello");
        assert_eq!(events(&mut r, &f), vec!["Message([104, 101, 108, 108, 111])"]);
        // Byte by byte.
        let mut got = Vec::new();
        for b in &f {
            got.extend(events(&mut r, &[*b]));
        }
        assert_eq!(got, vec!["Message([104, 101, 108, 108, 111])"]);
        assert_eq!(r.pending.capacity(), 0, "no buffer held between messages");
        // Fragmented, with a ping in between.
        let mut bytes = client_frame(0x2, false, b"he");
        bytes.extend(client_frame(0x9, true, b"p"));
        bytes.extend(client_frame(0x0, true, b"llo"));
        assert_eq!(events(&mut r, &bytes), vec!["Ping([112])", "Message([104, 101, 108, 108, 111])"]);
    }

    #[test]
    fn refusals() {
        let mut r = WsReader::default();
        assert_eq!(events(&mut r, &client_frame(0x1, true, b"text")), vec!["Fail(1003, \"binary messages only\")"]);
        assert!(events(&mut r, &client_frame(0x2, true, b"x")).is_empty(), "nothing after a failure");
        let mut r = WsReader::default();
        assert_eq!(events(&mut r, &[0x82, 0x01, b'x']), vec!["Fail(1002, \"client frames must be masked\")"]);
        // Oversize is refused from the header, before the payload arrives.
        let mut r = WsReader::default();
        let mut header = vec![0x82, 0x80 | 127];
        header.extend_from_slice(&((MAX_TRANSPORT_MESSAGE as u64) + 1).to_be_bytes());
        header.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(events(&mut r, &header), vec!["Fail(1009, \"message too big\")"]);
        let mut r = WsReader::default();
        assert_eq!(events(&mut r, &client_frame(0x0, true, b"x")), vec!["Fail(1002, \"unexpected data frame\")"]);
        let mut r = WsReader::default();
        let mut close = client_frame(0x8, true, &1000u16.to_be_bytes());
        close.extend(client_frame(0x2, true, b"late"));
        assert_eq!(events(&mut r, &close), vec!["Close(Some(1000))"]);
        // A text frame inside a fragmented binary message is a framing error, not text.
        let mut r = WsReader::default();
        let mut bytes = client_frame(0x2, false, b"he");
        bytes.extend(client_frame(0x1, true, b"llo"));
        assert_eq!(events(&mut r, &bytes), vec!["Fail(1002, \"unexpected data frame\")"]);
    }

    #[test]
    fn refusals_come_from_the_header_before_the_payload() {
        // Text, a reserved data opcode, a continuation of nothing, a reserved control opcode.
        for (first, want) in
            [(0x81, "Fail(1003, "), (0x83, "Fail(1002, "), (0x80, "Fail(1002, "), (0x8b, "Fail(1002, ")]
        {
            // Only the header of a 100 KiB frame: refused without waiting for its payload.
            let mut header = vec![first, 0x80 | 127];
            header.extend_from_slice(&(100u64 * 1024).to_be_bytes());
            header.extend_from_slice(&[1, 2, 3, 4]);
            let mut r = WsReader::default();
            let got = events(&mut r, &header);
            assert!(got.len() == 1 && got[0].starts_with(want), "{first:#x}: {got:?}");
            assert_eq!(r.buffered(), 0);
        }
    }

    #[test]
    fn close_frames_are_checked() {
        let close = |payload: &[u8]| events(&mut WsReader::default(), &client_frame(0x8, true, payload));
        assert_eq!(close(b""), vec!["Close(None)"]);
        assert_eq!(close(&[0x03]), vec!["Fail(1002, \"close payload of one byte\")"]);
        let mut with_reason = 4000u16.to_be_bytes().to_vec();
        with_reason.extend_from_slice("κόσμε".as_bytes());
        assert_eq!(close(&with_reason), vec!["Close(Some(4000))"]);
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            assert_eq!(close(&code.to_be_bytes()), vec!["Fail(1002, \"invalid close code\")"], "{code}");
        }
        let mut bad_utf8 = 1000u16.to_be_bytes().to_vec();
        bad_utf8.extend_from_slice(&[0xce, 0xba, 0xed, 0xa0, 0x80]);
        assert_eq!(close(&bad_utf8), vec!["Fail(1007, \"close reason is not utf-8\")"]);
    }

    #[test]
    fn close_payload_fits_a_control_frame_and_stays_utf8() {
        let long = "é".repeat(100);
        let p = close_payload(1000, &long);
        assert!(p.len() <= MAX_CONTROL as usize);
        assert!(std::str::from_utf8(&p[2..]).is_ok());
        assert_eq!(close_payload(1003, "no"), vec![0x03, 0xeb, b'n', b'o']);
    }

    #[test]
    fn buffered_counts_partial_frames_and_messages() {
        let mut r = WsReader::default();
        let frame = client_frame(0x2, false, b"abcdef");
        events(&mut r, &frame[..4]);
        assert_eq!(r.buffered(), 4);
        events(&mut r, &frame[4..]);
        assert_eq!(r.buffered(), 6, "the fragment waits for its continuation");
        events(&mut r, &client_frame(0x0, true, b""));
        assert_eq!(r.buffered(), 0);
    }
}
