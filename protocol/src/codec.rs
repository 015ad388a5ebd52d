//! Framing and the field-level reader and writer shared by both directions.
//!
//! A frame is `opcode: u8`, `len: u32 LE`, then `len` payload bytes. [`split_frame`] finds one
//! frame at the front of a buffer without looking inside it; [`Reader`] walks a payload field
//! by field and checks every length before slicing; [`put_str`] and friends write fields.

use bytes::BufMut;
use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

use crate::error::{DecodeError, EncodeError};
use crate::limits::{FRAME_HEADER_LEN, MAX_FRAME_PAYLOAD, STRING_PREFIX_LEN};

/// The outcome of looking for a frame at the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<F> {
    /// A whole frame, and how many bytes of the buffer it used.
    Frame {
        /// The decoded frame, borrowing from the buffer.
        frame: F,
        /// Bytes consumed, header included.
        len: usize,
    },
    /// The buffer holds only the start of a frame; at least `needed` more bytes are required.
    Incomplete {
        /// Minimum number of further bytes before a retry can succeed.
        needed: usize,
    },
}

/// Finds the frame at the front of `buf`: its opcode, its payload and its total length.
///
/// Checks the declared length against [`MAX_FRAME_PAYLOAD`] before anything else, so a
/// hostile length never causes a large buffer to be awaited or allocated.
pub fn split_frame(buf: &[u8]) -> Result<Decoded<(u8, &[u8])>, DecodeError> {
    let Some(header) = buf.get(..FRAME_HEADER_LEN) else {
        return Ok(Decoded::Incomplete { needed: FRAME_HEADER_LEN - buf.len() });
    };
    let opcode = header[0];
    let declared = u32::from_le_bytes([header[1], header[2], header[3], header[4]]);
    if declared as usize > MAX_FRAME_PAYLOAD {
        return Err(DecodeError::FrameTooLarge { len: declared, max: MAX_FRAME_PAYLOAD as u32 });
    }
    let total = FRAME_HEADER_LEN + declared as usize;
    match buf.get(FRAME_HEADER_LEN..total) {
        Some(payload) => Ok(Decoded::Frame { frame: (opcode, payload), len: total }),
        None => Ok(Decoded::Incomplete { needed: total - buf.len() }),
    }
}

/// Writes a frame header for a payload of `payload_len` bytes.
pub fn put_header(out: &mut impl BufMut, opcode: u8, payload_len: usize) -> Result<(), EncodeError> {
    if payload_len > MAX_FRAME_PAYLOAD {
        return Err(EncodeError::FrameTooLarge { len: payload_len });
    }
    out.put_u8(opcode);
    out.put_u32_le(payload_len as u32);
    Ok(())
}

/// Checks that `s` fits the limit `max` (in bytes).
pub fn check_str(s: &str, max: usize) -> Result<(), EncodeError> {
    if s.len() > max {
        return Err(EncodeError::StringTooLong { len: s.len(), max });
    }
    Ok(())
}

/// Encoded size of a length-prefixed string.
pub fn str_len(s: &str) -> usize {
    STRING_PREFIX_LEN + s.len()
}

/// Writes a length-prefixed UTF-8 string (the caller has checked its limit).
pub fn put_str(out: &mut impl BufMut, s: &str) {
    out.put_u16_le(s.len() as u16);
    out.put_slice(s.as_bytes());
}

/// A frame type of one direction, decodable from the front of a buffer.
pub trait WireFrame<'a>: Sized {
    /// Decodes the frame at the front of `buf`.
    fn decode(buf: &'a [u8]) -> Result<Decoded<Self>, DecodeError>;
}

/// Iterates over the frames of one transport message. A message that ends inside a frame
/// yields [`DecodeError::TruncatedMessage`]; after any error the iterator ends.
#[derive(Debug)]
pub struct Frames<'a, F> {
    rest: &'a [u8],
    _frame: std::marker::PhantomData<F>,
}

impl<'a, F> Frames<'a, F> {
    /// An iterator over the frames in `message`.
    pub fn new(message: &'a [u8]) -> Self {
        Self { rest: message, _frame: std::marker::PhantomData }
    }
}

impl<'a, F: WireFrame<'a>> Iterator for Frames<'a, F> {
    type Item = Result<F, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let item = match F::decode(self.rest) {
            Ok(Decoded::Frame { frame, len }) => {
                self.rest = &self.rest[len..];
                return Some(Ok(frame));
            }
            Ok(Decoded::Incomplete { needed }) => Err(DecodeError::TruncatedMessage { needed: needed as u32 }),
            Err(e) => Err(e),
        };
        self.rest = &[];
        Some(item)
    }
}

/// A cursor over one frame's payload. Every read checks the remaining length first.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    opcode: u8,
}

impl<'a> Reader<'a> {
    /// A reader over `payload` of a frame with `opcode` (used in errors).
    pub fn new(opcode: u8, payload: &'a [u8]) -> Self {
        Self { buf: payload, opcode }
    }

    fn truncated(&self) -> DecodeError {
        DecodeError::Truncated { opcode: self.opcode }
    }

    /// Takes the next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(self.truncated());
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Takes a fixed-size byte array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self.bytes(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Reads a `u8`.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads a little-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Reads a length-prefixed UTF-8 string of at most `max` bytes.
    pub fn str(&mut self, max: usize) -> Result<&'a str, DecodeError> {
        let len = self.u16()? as usize;
        if len > max {
            return Err(DecodeError::StringTooLong { len: len as u32, max: max as u32 });
        }
        let bytes = self.bytes(len)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8)
    }

    /// Reads a `u16` count and checks it against `max`.
    pub fn count(&mut self, max: usize) -> Result<usize, DecodeError> {
        let count = self.u16()? as usize;
        if count > max {
            return Err(DecodeError::CountTooLarge { count: count as u32, max: max as u32 });
        }
        Ok(count)
    }

    /// Reads one fixed-layout struct without copying.
    pub fn fixed<T>(&mut self) -> Result<&'a T, DecodeError>
    where
        T: FromBytes + KnownLayout + Immutable + Unaligned,
    {
        let bytes = self.bytes(size_of::<T>())?;
        T::ref_from_bytes(bytes).map_err(|_| self.truncated())
    }

    /// Reads `count` fixed-layout structs without copying.
    pub fn slice<T>(&mut self, count: usize) -> Result<&'a [T], DecodeError>
    where
        T: FromBytes + KnownLayout + Immutable + Unaligned,
    {
        let len = count.checked_mul(size_of::<T>()).ok_or_else(|| self.truncated())?;
        let bytes = self.bytes(len)?;
        <[T]>::ref_from_bytes(bytes).map_err(|_| self.truncated())
    }

    /// Takes everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Everything left, without consuming it.
    pub fn peek_rest(&self) -> &'a [u8] {
        self.buf
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Fails if any byte is left: frames have no trailing bytes.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes { opcode: self.opcode, extra: self.buf.len() as u32 })
        }
    }

    /// An `InvalidValue` error for `field` of this frame.
    pub fn invalid(&self, field: &'static str) -> DecodeError {
        DecodeError::InvalidValue { opcode: self.opcode, field }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_needs_header_then_payload() {
        assert_eq!(split_frame(&[]).unwrap(), Decoded::Incomplete { needed: 5 });
        assert_eq!(split_frame(&[1, 3, 0]).unwrap(), Decoded::Incomplete { needed: 2 });
        assert_eq!(split_frame(&[1, 3, 0, 0, 0, 9]).unwrap(), Decoded::Incomplete { needed: 2 });
        let buf = [1, 3, 0, 0, 0, 9, 8, 7, 6];
        assert_eq!(split_frame(&buf).unwrap(), Decoded::Frame { frame: (1, &buf[5..8]), len: 8 });
    }

    #[test]
    fn split_rejects_oversize_before_waiting() {
        let len = (MAX_FRAME_PAYLOAD as u32 + 1).to_le_bytes();
        let err = split_frame(&[1, len[0], len[1], len[2], len[3]]).unwrap_err();
        assert!(matches!(err, DecodeError::FrameTooLarge { .. }));
    }

    #[test]
    fn reader_checks_lengths() {
        let mut r = Reader::new(7, &[3, 0, b'a', b'b']);
        assert_eq!(r.str(10), Err(DecodeError::Truncated { opcode: 7 }));
        let mut r = Reader::new(7, &[3, 0, b'a', b'b', b'c']);
        assert_eq!(r.str(2), Err(DecodeError::StringTooLong { len: 3, max: 2 }));
        let mut r = Reader::new(7, &[2, 0, 0xff, 0xfe]);
        assert_eq!(r.str(2), Err(DecodeError::InvalidUtf8));
        let r = Reader::new(7, &[1]);
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes { opcode: 7, extra: 1 }));
    }
}
