//! Lists of variable-length entries (history, presence) that decode without allocating.
//!
//! A decoded [`List`] keeps the validated raw bytes and yields entries on iteration; a list
//! built for encoding borrows a slice of entries. Both compare equal when their entries do.

use std::fmt;

use bytes::BufMut;

use crate::codec::Reader;
use crate::error::{DecodeError, EncodeError};

/// An entry type that a [`List`] can hold.
pub trait ListItem<'a>: Sized + Copy + PartialEq + fmt::Debug {
    /// Reads one entry.
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError>;
    /// Checks the entry's limits before encoding.
    fn check(&self) -> Result<(), EncodeError>;
    /// Encoded size in bytes.
    fn encoded_len(&self) -> usize;
    /// Writes the entry.
    fn write(&self, out: &mut impl BufMut);
}

/// A list of entries: borrowed items (to encode) or validated raw bytes (decoded).
#[derive(Clone, Copy)]
pub enum List<'a, T> {
    /// Entries to encode.
    Items(&'a [T]),
    /// Entries as received; validated when the frame was decoded.
    Raw {
        /// Number of entries.
        count: usize,
        /// Their encoding.
        bytes: &'a [u8],
    },
}

impl<'a, T: ListItem<'a>> List<'a, T> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        match self {
            Self::Items(items) => items.len(),
            Self::Raw { count, .. } => *count,
        }
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Iterates over the entries.
    pub fn iter(&self) -> ListIter<'a, T> {
        match *self {
            Self::Items(items) => ListIter::Items(items.iter()),
            Self::Raw { count, bytes } => ListIter::Raw { left: count, reader: Reader::new(0, bytes) },
        }
    }

    pub(crate) fn check(&self, max: usize) -> Result<(), EncodeError> {
        if self.len() > max {
            return Err(EncodeError::CountTooLarge { count: self.len(), max });
        }
        match self {
            Self::Items(items) => items.iter().try_for_each(ListItem::check),
            Self::Raw { .. } => Ok(()),
        }
    }

    pub(crate) fn encoded_len(&self) -> usize {
        match self {
            Self::Items(items) => items.iter().map(ListItem::encoded_len).sum(),
            Self::Raw { bytes, .. } => bytes.len(),
        }
    }

    pub(crate) fn write(&self, out: &mut impl BufMut) {
        match self {
            Self::Items(items) => items.iter().for_each(|item| item.write(out)),
            Self::Raw { bytes, .. } => out.put_slice(bytes),
        }
    }

    /// Reads `count` entries, validating each, and keeps them raw.
    pub(crate) fn read(r: &mut Reader<'a>, count: usize) -> Result<Self, DecodeError> {
        let start = r.remaining();
        let all = r.peek_rest();
        for _ in 0..count {
            T::read(r)?;
        }
        let used = start - r.remaining();
        Ok(Self::Raw { count, bytes: &all[..used] })
    }
}

impl<'a, T: ListItem<'a>> PartialEq for List<'a, T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<'a, T: ListItem<'a>> Eq for List<'a, T> where T: Eq {}

impl<'a, T: ListItem<'a>> fmt::Debug for List<'a, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Iterator over a [`List`].
#[derive(Debug)]
pub enum ListIter<'a, T> {
    /// Over borrowed items.
    Items(std::slice::Iter<'a, T>),
    /// Over validated raw bytes.
    Raw {
        /// Entries left.
        left: usize,
        /// Position in the bytes.
        reader: Reader<'a>,
    },
}

impl<'a, T: ListItem<'a>> Iterator for ListIter<'a, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match self {
            Self::Items(items) => items.next().copied(),
            Self::Raw { left, reader } => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                // The bytes were validated when the frame was decoded; a failure here would
                // mean they changed, which a shared borrow rules out. End the iteration.
                T::read(reader).ok()
            }
        }
    }
}
