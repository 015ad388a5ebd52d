//! Backups of a whole store, as data: a consistent [`Export`] (one stream of key-value rows
//! per keyspace, every stream read from the same fjall snapshot, taken without stopping
//! writes), the row file format ([`RowWriter`], [`RowReader`]), and the [`Importer`] that
//! builds a fresh fjall store from such rows.
//!
//! The rows are the store's own keys and values (big-endian keys, versioned records), so a
//! restored store is, byte for byte, the store at the snapshot's instant: a state the store
//! passed through, which it opens like any other (a pixel index block still marked pending is
//! indexed again at open, as after a crash). In PostgreSQL mode the export holds the canvas
//! only (its geometry and every tile with the sequence it reflects, read in one transaction),
//! in the same encodings; the rest of that database is backed up with its own tools
//! (`pg_dump`).
//!
//! Where the row files go (a directory, S3), their manifest and their checksums are the
//! gateway's business; this module knows rows, not objects.

use std::io::{self, Read, Write};
use std::path::Path;

use pixelparty_protocol::Geometry;
use sha2::{Digest, Sha256};

use crate::canvas::{TileSnapshot, encode_geometry};
use crate::codec::key_u64;
use crate::config::StoreConfig;
use crate::db::{DB_FORMAT, Db, names};
use crate::error::{Result, StorageError};

/// One key-value row.
pub type Row = (Vec<u8>, Vec<u8>);

/// The rows of one keyspace, ascending by key.
pub type Rows = Box<dyn Iterator<Item = Result<Row>> + Send>;

/// One keyspace of an export.
pub struct ExportPart {
    /// The keyspace's name (see [`KEYSPACES`]).
    pub keyspace: &'static str,
    /// Its rows, in key order.
    pub rows: Rows,
}

impl std::fmt::Debug for ExportPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportPart").field("keyspace", &self.keyspace).finish_non_exhaustive()
    }
}

/// A consistent export of a store ([`Backend::export`](crate::Backend::export)). Its
/// iterators hold the snapshot: drop the export soon (the store keeps older versions of what
/// changes meanwhile until then).
#[derive(Debug)]
pub struct Export {
    /// `"fjall"` (every keyspace) or `"postgres"` (the canvas only).
    pub backend: &'static str,
    /// The store format the rows are in.
    pub store_format: u32,
    /// The canvas's geometry, once created.
    pub geometry: Option<Geometry>,
    /// The highest pixel sequence the export holds (journal or tiles).
    pub canvas_seq: u64,
    /// The lowest journal sequence it holds (0: none); 1 when the journal is complete.
    pub journal_first: u64,
    /// The keyspaces, in [`KEYSPACES`] order.
    pub parts: Vec<ExportPart>,
}

/// Every keyspace of the fjall store, in export order.
pub const KEYSPACES: [&str; 22] = [
    names::META,
    names::USERS,
    names::USER_NAMES,
    names::SESSIONS,
    names::USER_SESSIONS,
    names::FRIEND_OUT,
    names::FRIEND_IN,
    names::FRIENDS,
    names::BLOCKS,
    names::USER_BANS,
    names::NET_BANS,
    names::AUDIT,
    names::ROOMS,
    names::ROOM_NAMES,
    names::MESSAGES,
    names::DIRECT,
    names::CONVERSATIONS,
    names::JOURNAL,
    names::PIXEL_INDEX,
    names::INDEX_PENDING,
    names::TIME_INDEX,
    names::TILES,
];

impl Db {
    fn keyspace_named(&self, name: &str) -> Option<&fjall::Keyspace> {
        Some(match name {
            names::META => &self.meta,
            names::USERS => &self.users,
            names::USER_NAMES => &self.user_names,
            names::SESSIONS => &self.sessions,
            names::USER_SESSIONS => &self.user_sessions,
            names::FRIEND_OUT => &self.friend_out,
            names::FRIEND_IN => &self.friend_in,
            names::FRIENDS => &self.friends,
            names::BLOCKS => &self.blocks,
            names::USER_BANS => &self.user_bans,
            names::NET_BANS => &self.net_bans,
            names::AUDIT => &self.audit,
            names::ROOMS => &self.rooms,
            names::ROOM_NAMES => &self.room_names,
            names::MESSAGES => &self.messages,
            names::DIRECT => &self.direct,
            names::CONVERSATIONS => &self.conversations,
            names::JOURNAL => &self.journal,
            names::PIXEL_INDEX => &self.pixel_index,
            names::INDEX_PENDING => &self.index_pending,
            names::TIME_INDEX => &self.time_index,
            names::TILES => &self.tiles,
            _ => return None,
        })
    }

    /// Every keyspace as of one snapshot, taken now; writers go on meanwhile.
    pub fn export(&self) -> Result<Export> {
        use fjall::Readable as _;
        let snapshot = self.database.snapshot();
        let geometry = snapshot.get(&self.meta, "canvas")?.map(|v| crate::canvas::decode_geometry(&v)).transpose()?;
        let journal_key = |g: Option<fjall::Guard>| -> Result<u64> {
            match g {
                Some(g) => key_u64(names::JOURNAL, &g.key()?, 0),
                None => Ok(0),
            }
        };
        let journal_first = journal_key(snapshot.first_key_value(&self.journal))?;
        let canvas_seq = match snapshot.last_key_value(&self.journal) {
            Some(g) => {
                let (k, v) = g.into_inner()?;
                crate::canvas::decode_block(key_u64(names::JOURNAL, &k, 0)?, &v)?.last().map_or(0, |r| r.seq)
            }
            None => 0,
        };
        let tiles_seq = snapshot
            .iter(&self.tiles)
            .map(|g| {
                let (k, v) = g.into_inner()?;
                Ok(TileSnapshot::decode(crate::codec::key_u32(names::TILES, &k, 0)?, &v)?.seq)
            })
            .try_fold(0u64, |m, s: Result<u64>| s.map(|s| m.max(s)))?;
        let parts = KEYSPACES
            .iter()
            .map(|&name| {
                let ks = self.keyspace_named(name).expect("every exported keyspace is known");
                let rows = snapshot.iter(ks).map(|g| {
                    let (k, v) = g.into_inner()?;
                    Ok((k.to_vec(), v.to_vec()))
                });
                ExportPart { keyspace: name, rows: Box::new(rows) }
            })
            .collect();
        Ok(Export {
            backend: "fjall",
            store_format: DB_FORMAT,
            geometry,
            canvas_seq: canvas_seq.max(tiles_seq),
            journal_first,
            parts,
        })
    }
}

/// The export of a canvas alone (PostgreSQL mode): the `meta` rows (format, geometry) and
/// every painted tile, in the fjall encodings.
pub fn canvas_export(geometry: Option<Geometry>, canvas: Option<crate::RecoveredCanvas>) -> Export {
    let mut meta = vec![(b"format".to_vec(), DB_FORMAT.to_be_bytes().to_vec())];
    if let Some(g) = &geometry {
        meta.insert(0, (b"canvas".to_vec(), encode_geometry(g)));
    }
    let (mut tiles, mut canvas_seq) = (Vec::new(), 0);
    if let Some(c) = canvas {
        canvas_seq = c.last_seq;
        for (tile, (data, seq)) in c.tiles.into_iter().zip(c.tile_seqs).enumerate() {
            if seq > 0 {
                let snap = TileSnapshot { tile: tile as u32, seq, data };
                tiles.push(((tile as u32).to_be_bytes().to_vec(), snap.encode()));
            }
        }
    }
    let part = |keyspace, rows: Vec<Row>| ExportPart { keyspace, rows: Box::new(rows.into_iter().map(Ok)) };
    Export {
        backend: "postgres",
        store_format: DB_FORMAT,
        geometry,
        canvas_seq,
        journal_first: 0,
        parts: vec![part(names::META, meta), part(names::TILES, tiles)],
    }
}

/// Longest key a row file may hold (fjall's own limit).
pub const MAX_KEY: usize = u16::MAX as usize;
/// Longest value a row file may hold.
pub const MAX_VALUE: usize = 64 << 20;
/// First bytes of a row file.
pub const MAGIC: &[u8; 8] = b"PXPROWS1";
/// Key length that marks the end of a row file (followed by the row count).
const END: u32 = u32::MAX;

/// What a row file holds: its row count and the SHA-256 of its rows (each as key length,
/// key, value length, value; lengths u32 little-endian), which a restored store reproduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowsSummary {
    /// Rows.
    pub rows: u64,
    /// SHA-256 of the rows.
    pub sha256: [u8; 32],
}

/// Writes a row file: [`MAGIC`], the rows, then an end mark with the row count.
#[derive(Debug)]
pub struct RowWriter<W: Write> {
    out: W,
    rows: u64,
    digest: Sha256,
}

impl<W: Write> RowWriter<W> {
    /// Starts a row file.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(MAGIC)?;
        Ok(Self { out, rows: 0, digest: Sha256::new() })
    }

    /// Appends a row.
    pub fn row(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        if key.is_empty() || key.len() > MAX_KEY || value.len() > MAX_VALUE {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "row beyond the row file's bounds"));
        }
        for part in [&(key.len() as u32).to_le_bytes()[..], key, &(value.len() as u32).to_le_bytes()[..], value] {
            self.digest.update(part);
            self.out.write_all(part)?;
        }
        self.rows += 1;
        Ok(())
    }

    /// Writes the end mark; the writer and what it wrote.
    pub fn finish(mut self) -> io::Result<(W, RowsSummary)> {
        self.out.write_all(&END.to_le_bytes())?;
        self.out.write_all(&self.rows.to_le_bytes())?;
        Ok((self.out, RowsSummary { rows: self.rows, sha256: self.digest.finalize().into() }))
    }
}

/// Reads a row file, checking its bounds, its end mark and its row count.
#[derive(Debug)]
pub struct RowReader<R: Read> {
    inp: R,
    rows: u64,
    digest: Sha256,
    summary: Option<RowsSummary>,
}

fn bad(reason: &'static str) -> StorageError {
    StorageError::corrupt("backup", reason)
}

impl<R: Read> RowReader<R> {
    /// Opens a row file (reads and checks its magic).
    pub fn new(mut inp: R) -> Result<Self> {
        let mut magic = [0u8; 8];
        inp.read_exact(&mut magic).map_err(|_| bad("not a row file (too short)"))?;
        if &magic != MAGIC {
            return Err(bad("not a row file (bad magic)"));
        }
        Ok(Self { inp, rows: 0, digest: Sha256::new(), summary: None })
    }

    fn u32(&mut self) -> Result<u32> {
        let mut b = [0u8; 4];
        self.inp.read_exact(&mut b).map_err(|_| bad("row file truncated"))?;
        Ok(u32::from_le_bytes(b))
    }

    fn bytes(&mut self, len: usize) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        let got = (&mut self.inp).take(len as u64).read_to_end(&mut v).map_err(|_| bad("row file unreadable"))?;
        if got != len {
            return Err(bad("row file truncated"));
        }
        Ok(v)
    }

    /// The next row, or `None` after the end mark (whose count must match).
    pub fn next_row(&mut self) -> Result<Option<Row>> {
        if self.summary.is_some() {
            return Ok(None);
        }
        let klen = self.u32()?;
        if klen == END {
            let mut b = [0u8; 8];
            self.inp.read_exact(&mut b).map_err(|_| bad("row file truncated"))?;
            if u64::from_le_bytes(b) != self.rows {
                return Err(bad("row count does not match the end mark"));
            }
            let mut rest = [0u8; 1];
            if self.inp.read(&mut rest).map_err(|_| bad("row file unreadable"))? != 0 {
                return Err(bad("bytes after the end mark"));
            }
            let sha256 = std::mem::take(&mut self.digest).finalize().into();
            self.summary = Some(RowsSummary { rows: self.rows, sha256 });
            return Ok(None);
        }
        if klen == 0 || klen as usize > MAX_KEY {
            return Err(bad("row key length out of bounds"));
        }
        let key = self.bytes(klen as usize)?;
        let vlen = self.u32()?;
        if vlen as usize > MAX_VALUE {
            return Err(bad("row value length out of bounds"));
        }
        let value = self.bytes(vlen as usize)?;
        for part in [&klen.to_le_bytes()[..], &key, &vlen.to_le_bytes()[..], &value] {
            self.digest.update(part);
        }
        self.rows += 1;
        Ok(Some((key, value)))
    }

    /// What the file held, once [`Self::next_row`] has returned `None`.
    pub fn summary(&self) -> Option<RowsSummary> {
        self.summary
    }
}

impl<R: Read> Iterator for RowReader<R> {
    type Item = Result<Row>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_row().transpose()
    }
}

/// The summary of rows (count and digest, as a [`RowWriter`] computes them) without writing
/// them anywhere: to compare a restored store with its backup.
pub fn summarize(rows: impl Iterator<Item = Result<Row>>) -> Result<RowsSummary> {
    let mut w = RowWriter::new(io::sink()).map_err(StorageError::io)?;
    for row in rows {
        let (k, v) = row?;
        w.row(&k, &v).map_err(StorageError::io)?;
    }
    Ok(w.finish().map_err(StorageError::io)?.1)
}

/// Builds a new fjall store from exported rows, one keyspace at a time, each written by bulk
/// ingestion (sorted tables, no journal). The directory must not hold a store.
#[derive(Debug)]
pub struct Importer {
    db: Db,
    done: Vec<&'static str>,
}

impl Importer {
    /// Creates the store at `path` (refused when the directory exists and is not empty).
    pub fn create(path: &Path) -> Result<Self> {
        if std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_some()) {
            return Err(StorageError::invalid("the restore target directory is not empty"));
        }
        let db = Db::open(StoreConfig::new(path))?;
        Ok(Self { db, done: Vec::new() })
    }

    /// Writes one keyspace's rows (strictly ascending keys); the number written.
    pub fn keyspace(&mut self, name: &str, rows: impl Iterator<Item = Result<Row>>) -> Result<u64> {
        let name = *KEYSPACES.iter().find(|&&k| k == name).ok_or_else(|| bad("unknown keyspace in the backup"))?;
        if self.done.contains(&name) {
            return Err(bad("a keyspace appears twice in the backup"));
        }
        self.done.push(name);
        let ks = self.db.keyspace_named(name).expect("known keyspace").clone();
        let mut ingestion = ks.start_ingestion()?;
        let (mut count, mut last): (u64, Option<Vec<u8>>) = (0, None);
        for row in rows {
            let (k, v) = row?;
            if last.as_ref().is_some_and(|l| *l >= k) {
                return Err(bad("rows are not in ascending key order"));
            }
            ingestion.write(k.as_slice(), v)?;
            last = Some(k);
            count += 1;
        }
        ingestion.finish()?;
        Ok(count)
    }

    /// Makes everything durable and closes the store.
    pub fn finish(self) -> Result<()> {
        self.db.database.persist(fjall::PersistMode::SyncAll)?;
        Ok(())
    }
}

/// Opens a stopped store's directory without its writer and indexer threads (nothing is
/// written but the format mark of a new store) and hands its export to `f`: to verify a
/// restore against its backup.
pub fn with_export_of_dir<T>(path: &Path, f: impl FnOnce(Export) -> Result<T>) -> Result<T> {
    if std::fs::read_dir(path).map_or(true, |mut d| d.next().is_none()) {
        return Err(StorageError::invalid("no store in that directory"));
    }
    let db = Db::open(StoreConfig::new(path))?;
    f(db.export()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_their_summary_matches() {
        let rows: Vec<Row> = (0u32..500).map(|i| (i.to_be_bytes().to_vec(), vec![i as u8; (i % 7) as usize])).collect();
        let mut w = RowWriter::new(Vec::new()).unwrap();
        for (k, v) in &rows {
            w.row(k, v).unwrap();
        }
        let (bytes, summary) = w.finish().unwrap();
        assert_eq!(summary.rows, 500);
        let mut r = RowReader::new(&bytes[..]).unwrap();
        let back: Vec<Row> = r.by_ref().collect::<Result<_>>().unwrap();
        assert_eq!(back, rows);
        assert_eq!(r.summary(), Some(summary));
        assert_eq!(summarize(rows.into_iter().map(Ok)).unwrap(), summary);
    }

    #[test]
    fn damaged_row_files_are_refused() {
        let mut w = RowWriter::new(Vec::new()).unwrap();
        w.row(b"k1", b"v1").unwrap();
        w.row(b"k2", b"v2").unwrap();
        let (bytes, _) = w.finish().unwrap();
        let read_all = |b: &[u8]| -> Result<Vec<Row>> { RowReader::new(b)?.collect() };
        assert!(read_all(&bytes).is_ok());
        for cut in 0..bytes.len() {
            assert!(read_all(&bytes[..cut]).is_err(), "a file cut at {cut} bytes is refused");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(read_all(&extra).is_err(), "bytes after the end mark");
        let mut count = bytes.clone();
        let n = count.len();
        count[n - 8] = 3;
        assert!(read_all(&count).is_err(), "a count that does not match");
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&(MAX_KEY as u32 + 1).to_le_bytes());
        assert!(read_all(&huge).is_err(), "an oversized key length");
        assert!(RowWriter::new(Vec::new()).unwrap().row(b"", b"v").is_err(), "an empty key");
    }

    fn rec(seq: u64, x: u16, y: u16, colour: u8, time_ms: u64) -> crate::PixelRecord {
        crate::PixelRecord { seq, x, y, colour, user: 1, time_ms }
    }

    /// Every keyspace of a store, as rows.
    fn dump(export: Export) -> Vec<(&'static str, Vec<Row>)> {
        export.parts.into_iter().map(|p| (p.keyspace, p.rows.collect::<Result<Vec<_>>>().unwrap())).collect()
    }

    #[test]
    fn an_export_taken_while_writes_go_on_imports_to_the_same_rows() {
        let (_dir, store) = crate::testing::temp_fjall();
        let g = Geometry::new(64, 64, 4, 16).unwrap();
        store.run(move |tx| tx.init_canvas(&g)).unwrap();
        let alice = store.run(|tx| tx.create_user("alice", "hash", crate::Role::User, 5)).unwrap();
        let room = store.run(move |tx| tx.create_room("lobby", alice.id, 6)).unwrap();
        for seq in 1..=300u64 {
            store
                .run(move |tx| {
                    tx.append_pixels(&[rec(seq, (seq % 64) as u16, (seq / 64) as u16, (seq % 15) as u8, seq)])
                })
                .unwrap();
        }
        let export = store.export().unwrap();
        assert_eq!((export.backend, export.canvas_seq, export.journal_first), ("fjall", 300, 1));
        assert_eq!(export.geometry, Some(g));
        // Written after the snapshot: not in the export.
        for seq in 301..=320u64 {
            store.run(move |tx| tx.append_pixels(&[rec(seq, 1, 1, 2, seq)])).unwrap();
        }
        store.run(|tx| tx.create_user("bob", "hash", crate::Role::User, 7)).unwrap();
        let rows = dump(export);
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), KEYSPACES);

        let target = tempfile::tempdir().unwrap();
        let path = target.path().join("db");
        let mut importer = Importer::create(&path).unwrap();
        for (name, part) in &rows {
            assert_eq!(importer.keyspace(name, part.iter().cloned().map(Ok)).unwrap(), part.len() as u64);
        }
        assert!(importer.keyspace("users", std::iter::empty()).is_err(), "a keyspace twice");
        assert!(importer.keyspace("nope", std::iter::empty()).is_err(), "an unknown keyspace");
        importer.finish().unwrap();
        assert!(Importer::create(&path).is_err(), "never into a store");
        let again = with_export_of_dir(&path, |e| Ok(dump(e))).unwrap();
        assert_eq!(again, rows, "the restored store holds exactly the exported rows");

        let restored = crate::Fjall::open(StoreConfig::new(&path)).unwrap();
        assert_eq!(restored.last_journal_seq().unwrap(), 300);
        assert!(restored.user_by_name("alice").unwrap().is_some());
        assert!(restored.user_by_name("bob").unwrap().is_none());
        assert_eq!(restored.room(room.id).unwrap().map(|r| r.name), Some("lobby".into()));
        assert_eq!(restored.pixel_history(1, 1, u64::MAX, 10).unwrap().len(), 1, "the pixel index came along");
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let then = rt.block_on(crate::canvas::canvas_at(&store, g, 300)).unwrap();
        assert_eq!(restored.recover_canvas(&g).unwrap().tiles, then.tiles, "the canvas as of the snapshot");
        // Unordered rows are refused.
        let other = tempfile::tempdir().unwrap();
        let mut importer = Importer::create(other.path()).unwrap();
        let unordered = vec![Ok((b"b".to_vec(), vec![])), Ok((b"a".to_vec(), vec![]))];
        assert!(importer.keyspace("users", unordered.into_iter()).is_err());
    }

    #[test]
    fn the_canvas_at_a_moment_from_a_base_equals_the_full_replay() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (_dir, store) = crate::testing::temp_fjall();
        let g = Geometry::new(32, 32, 4, 16).unwrap();
        for seq in 1..=200u64 {
            let (x, y) = ((seq * 7 % 32) as u16, (seq * 3 % 32) as u16);
            store.run(move |tx| tx.append_pixels(&[rec(seq, x, y, (seq % 16) as u8, seq * 10)])).unwrap();
        }
        let b: std::sync::Arc<dyn crate::Backend> = std::sync::Arc::new(store.clone());
        for (base_at, at) in [(0, 555), (500, 555), (800, 1990), (1000, 1000), (300, 2500)] {
            let full = rt.block_on(crate::canvas::canvas_at(&*b, g, at)).unwrap();
            let base = (base_at > 0).then(|| rt.block_on(crate::canvas::canvas_at(&*b, g, base_at)).unwrap());
            let from = rt.block_on(crate::canvas::canvas_at_from(&*b, g, base, at)).unwrap();
            assert_eq!(from.tiles, full.tiles, "base at {base_at}, moment {at}");
        }
    }

    proptest::proptest! {
        /// Arbitrary bytes never panic the reader, and whatever it accepts re-encodes to the
        /// same bytes.
        #[test]
        fn reader_never_panics(tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let mut bytes = MAGIC.to_vec();
            bytes.extend_from_slice(&tail);
            if let Ok(rows) = RowReader::new(&bytes[..]).and_then(|r| r.collect::<Result<Vec<Row>>>()) {
                let mut w = RowWriter::new(Vec::new()).unwrap();
                for (k, v) in &rows {
                    w.row(k, v).unwrap();
                }
                proptest::prop_assert_eq!(w.finish().unwrap().0, bytes);
            }
        }
    }
}
