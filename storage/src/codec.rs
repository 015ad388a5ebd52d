//! Value and key encoding. Every value starts with a format version byte, checked on read;
//! keys are big-endian so that scans come out in numeric order.

use crate::error::{Result, StorageError};

/// Format version of every value this build writes.
pub(crate) const VALUE_VERSION: u8 = 1;

/// Builds one value.
pub(crate) struct Enc(Vec<u8>);

impl Enc {
    pub(crate) fn new() -> Self {
        let mut v = Vec::with_capacity(32);
        v.push(VALUE_VERSION);
        Self(v)
    }
    pub(crate) fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    pub(crate) fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn opt_u64(self, v: Option<u64>) -> Self {
        match v {
            Some(v) => self.u8(1).u64(v),
            None => self.u8(0),
        }
    }
    /// A byte string with a `u32` length prefix.
    pub(crate) fn bytes(mut self, v: &[u8]) -> Self {
        self.0.extend_from_slice(&(v.len() as u32).to_le_bytes());
        self.0.extend_from_slice(v);
        self
    }
    pub(crate) fn str(self, v: &str) -> Self {
        self.bytes(v.as_bytes())
    }
    pub(crate) fn done(self) -> Vec<u8> {
        self.0
    }
}

/// Reads one value, checking its version and every length.
#[derive(Debug)]
pub(crate) struct Dec<'a> {
    buf: &'a [u8],
    keyspace: &'static str,
}

impl<'a> Dec<'a> {
    pub(crate) fn new(keyspace: &'static str, buf: &'a [u8]) -> Result<Self> {
        match buf.split_first() {
            Some((&VALUE_VERSION, rest)) => Ok(Self { buf: rest, keyspace }),
            Some(_) => Err(StorageError::corrupt(keyspace, "unknown value version")),
            None => Err(StorageError::corrupt(keyspace, "empty value")),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(StorageError::corrupt(self.keyspace, "truncated value"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub(crate) fn opt_u64(&mut self) -> Result<Option<u64>> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.u64()?)),
            _ => Err(StorageError::corrupt(self.keyspace, "bad option tag")),
        }
    }
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }
    pub(crate) fn str(&mut self) -> Result<String> {
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| StorageError::corrupt(self.keyspace, "invalid utf-8"))
    }
    pub(crate) fn bad(&self, reason: &'static str) -> StorageError {
        StorageError::corrupt(self.keyspace, reason)
    }
    pub(crate) fn finish(self) -> Result<()> {
        if self.buf.is_empty() { Ok(()) } else { Err(StorageError::corrupt(self.keyspace, "trailing bytes")) }
    }
}

/// Builds a big-endian key from parts.
pub(crate) fn key(parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

/// Reads a big-endian `u32` at `at` of a key.
pub(crate) fn key_u32(keyspace: &'static str, key: &[u8], at: usize) -> Result<u32> {
    key.get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| StorageError::corrupt(keyspace, "short key"))
}

/// Reads a big-endian `u64` at `at` of a key.
pub(crate) fn key_u64(keyspace: &'static str, key: &[u8], at: usize) -> Result<u64> {
    key.get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StorageError::corrupt(keyspace, "short key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_checks() {
        let v = Enc::new().u8(7).u16(300).u32(70_000).u64(1 << 40).opt_u64(Some(5)).opt_u64(None).str("hé").done();
        let mut d = Dec::new("t", &v).unwrap();
        assert_eq!(d.u8().unwrap(), 7);
        assert_eq!(d.u16().unwrap(), 300);
        assert_eq!(d.u32().unwrap(), 70_000);
        assert_eq!(d.u64().unwrap(), 1 << 40);
        assert_eq!(d.opt_u64().unwrap(), Some(5));
        assert_eq!(d.opt_u64().unwrap(), None);
        assert_eq!(d.str().unwrap(), "hé");
        d.finish().unwrap();

        assert!(Dec::new("t", &[]).unwrap_err().is_corrupt());
        assert!(Dec::new("t", &[9, 1]).unwrap_err().is_corrupt());
        let mut d = Dec::new("t", &[1, 5, 0, 0, 0, b'a']).unwrap();
        assert!(d.bytes().unwrap_err().is_corrupt());
        let d = Dec::new("t", &[1, 1]).unwrap();
        assert!(d.finish().unwrap_err().is_corrupt());
    }
}
