//! The fjall database and its keyspaces, one per record kind. Read operations are methods of
//! [`Db`] (in the domain modules) and can run on any thread.

use fjall::{Database, Keyspace, KeyspaceCreateOptions};

use crate::codec::{key_u32, key_u64};
use crate::config::StoreConfig;
use crate::error::Result;

/// Keyspace names with what each maps (keys big-endian).
pub(crate) mod names {
    /// `"format"` → version; `"canvas"` → geometry.
    pub const META: &str = "meta";
    /// user id → user.
    pub const USERS: &str = "users";
    /// lower-cased name → user id.
    pub const USER_NAMES: &str = "user_names";
    /// token hash (32 bytes) → session.
    pub const SESSIONS: &str = "sessions";
    /// user id ‖ token hash → ().
    pub const USER_SESSIONS: &str = "user_sessions";
    /// from ‖ to → time.
    pub const FRIEND_OUT: &str = "friend_out";
    /// to ‖ from → time.
    pub const FRIEND_IN: &str = "friend_in";
    /// a ‖ b → since (both directions stored).
    pub const FRIENDS: &str = "friends";
    /// blocker ‖ blocked → time.
    pub const BLOCKS: &str = "blocks";
    /// user id → ban.
    pub const USER_BANS: &str = "user_bans";
    /// net key → ban.
    pub const NET_BANS: &str = "net_bans";
    /// seq → audit entry.
    pub const AUDIT: &str = "audit";
    /// room id → room.
    pub const ROOMS: &str = "rooms";
    /// lower-cased name → room id.
    pub const ROOM_NAMES: &str = "room_names";
    /// room ‖ seq → message.
    pub const MESSAGES: &str = "messages";
    /// lo user ‖ hi user ‖ seq → message.
    pub const DIRECT: &str = "direct";
    /// user ‖ peer → (last seq, last time).
    pub const CONVERSATIONS: &str = "conversations";
    /// seq → pixel record.
    pub const JOURNAL: &str = "journal";
    /// y ‖ x ‖ seq → (colour, user, time).
    pub const PIXEL_INDEX: &str = "pixel_index";
    /// first seq of a journal block whose records are not yet in the pixel index → ().
    pub const INDEX_PENDING: &str = "index_pending";
    /// time ‖ first seq of a journal batch → ().
    pub const TIME_INDEX: &str = "time_index";
    /// tile id → (seq, bytes).
    pub const TILES: &str = "tiles";
}

/// Handles to the database and every keyspace.
pub struct Db {
    pub(crate) database: Database,
    pub(crate) config: StoreConfig,
    pub(crate) meta: Keyspace,
    pub(crate) users: Keyspace,
    pub(crate) user_names: Keyspace,
    pub(crate) sessions: Keyspace,
    pub(crate) user_sessions: Keyspace,
    pub(crate) friend_out: Keyspace,
    pub(crate) friend_in: Keyspace,
    pub(crate) friends: Keyspace,
    pub(crate) blocks: Keyspace,
    pub(crate) user_bans: Keyspace,
    pub(crate) net_bans: Keyspace,
    pub(crate) audit: Keyspace,
    pub(crate) rooms: Keyspace,
    pub(crate) room_names: Keyspace,
    pub(crate) messages: Keyspace,
    pub(crate) direct: Keyspace,
    pub(crate) conversations: Keyspace,
    pub(crate) journal: Keyspace,
    pub(crate) pixel_index: Keyspace,
    pub(crate) index_pending: Keyspace,
    pub(crate) index_tail: crate::index::IndexTail,
    pub(crate) time_index: Keyspace,
    pub(crate) tiles: Keyspace,
    /// Failures to inject (tests only).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fail_points: crate::testing::FailPoints,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.config.path).finish_non_exhaustive()
    }
}

/// Format of the database directory; a different value refuses to open.
pub(crate) const DB_FORMAT: u32 = 1;

impl Db {
    pub(crate) fn open(config: StoreConfig) -> Result<Self> {
        std::fs::create_dir_all(&config.path)?;
        // One background worker: fjall's flushes and compactions then run one after the other
        // on one thread. With more, worker 0 hands every compaction back to the shared queue
        // and, while the others are busy, keeps receiving and re-sending it (a busy loop that
        // took a tenth of the CPU under load on two cores).
        let database = Database::builder(&config.path).cache_size(config.cache_bytes).worker_threads(1).open()?;
        let ks = |name: &str| database.keyspace(name, KeyspaceCreateOptions::default);
        let db = Self {
            meta: ks(names::META)?,
            users: ks(names::USERS)?,
            user_names: ks(names::USER_NAMES)?,
            sessions: ks(names::SESSIONS)?,
            user_sessions: ks(names::USER_SESSIONS)?,
            friend_out: ks(names::FRIEND_OUT)?,
            friend_in: ks(names::FRIEND_IN)?,
            friends: ks(names::FRIENDS)?,
            blocks: ks(names::BLOCKS)?,
            user_bans: ks(names::USER_BANS)?,
            net_bans: ks(names::NET_BANS)?,
            audit: ks(names::AUDIT)?,
            rooms: ks(names::ROOMS)?,
            room_names: ks(names::ROOM_NAMES)?,
            messages: ks(names::MESSAGES)?,
            direct: ks(names::DIRECT)?,
            conversations: ks(names::CONVERSATIONS)?,
            journal: ks(names::JOURNAL)?,
            // Written by bulk ingestion (see `index`); its memtable only ever holds the
            // deletions of pruning.
            pixel_index: database
                .keyspace(names::PIXEL_INDEX, || KeyspaceCreateOptions::default().max_memtable_size(8 * 1024 * 1024))?,
            index_pending: ks(names::INDEX_PENDING)?,
            index_tail: crate::index::IndexTail::default(),
            time_index: ks(names::TIME_INDEX)?,
            tiles: ks(names::TILES)?,
            #[cfg(any(test, feature = "testing"))]
            fail_points: crate::testing::FailPoints::default(),
            database,
            config,
        };
        db.check_format()?;
        Ok(db)
    }

    fn check_format(&self) -> Result<()> {
        match self.meta.get("format")? {
            None => {
                self.meta.insert("format", DB_FORMAT.to_be_bytes())?;
                Ok(())
            }
            Some(v) if v.as_ref() == DB_FORMAT.to_be_bytes() => Ok(()),
            Some(_) => Err(crate::error::StorageError::corrupt(names::META, "unsupported database format")),
        }
    }

    /// The last key of a keyspace read as a big-endian u32 at offset 0 (0 when empty).
    pub(crate) fn last_u32(&self, ks: &Keyspace, name: &'static str) -> Result<u32> {
        match ks.last_key_value() {
            Some(guard) => key_u32(name, &guard.key()?, 0),
            None => Ok(0),
        }
    }

    /// The last key of a keyspace read as a big-endian u64 at offset 0 (0 when empty).
    pub(crate) fn last_u64(&self, ks: &Keyspace, name: &'static str) -> Result<u64> {
        match ks.last_key_value() {
            Some(guard) => key_u64(name, &guard.key()?, 0),
            None => Ok(0),
        }
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }
}
