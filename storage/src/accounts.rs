//! Accounts and login sessions.
//!
//! User ids are dense (1, 2, 3, ...) because the engine indexes per-user state by them. Names
//! are unique case-insensitively. Sessions are keyed by the SHA-256 of the token: the token
//! itself never reaches the store.

use pixelparty_protocol::limits::MAX_NAME_BYTES;

use crate::codec::key;
use crate::db::{Db, names};
use crate::error::{Result, StorageError};
use crate::records::{AuditAction, Role, Session, User};
use crate::writer::Tx;

/// Length of a session token hash.
pub const TOKEN_HASH_LEN: usize = 32;

/// The case-folded form under which a name is unique.
pub fn fold_name(name: &str) -> String {
    name.to_lowercase()
}

impl Db {
    /// The user with this id.
    pub fn user(&self, id: u32) -> Result<Option<User>> {
        self.users.get(id.to_be_bytes())?.map(|v| User::decode(&v)).transpose()
    }

    /// The user with this name (case-insensitive). A name longer than any user's has none
    /// (and never reaches the store as an oversized key).
    pub fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        if name.is_empty() || name.len() > MAX_NAME_BYTES {
            return Ok(None);
        }
        match self.user_names.get(fold_name(name).as_bytes())? {
            Some(id) => {
                let id: [u8; 4] =
                    id.as_ref().try_into().map_err(|_| StorageError::corrupt(names::USER_NAMES, "bad id"))?;
                self.user(u32::from_be_bytes(id))
            }
            None => Ok(None),
        }
    }

    /// Up to `limit` users with ids above `after`, ascending.
    pub fn users(&self, after: u32, limit: usize) -> Result<Vec<User>> {
        let start = after.saturating_add(1).to_be_bytes();
        self.users.range(start..).take(limit).map(|g| User::decode(&g.into_inner()?.1)).collect()
    }

    /// Number of users (ids are dense and never reused).
    pub fn user_count(&self) -> Result<u32> {
        self.last_u32(&self.users, names::USERS)
    }

    /// The session for a token hash, if it exists and has not expired at `now_ms`.
    pub fn session(&self, token_hash: &[u8; TOKEN_HASH_LEN], now_ms: u64) -> Result<Option<Session>> {
        let Some(v) = self.sessions.get(token_hash)? else {
            return Ok(None);
        };
        let session = Session::decode(&v)?;
        Ok((now_ms < session.expires_ms).then_some(session))
    }
}

impl Tx<'_> {
    /// Creates a user. Fails with a conflict if the name is taken (case-insensitively).
    pub fn create_user(&mut self, name: &str, password_hash: &str, role: Role, now_ms: u64) -> Result<User> {
        if name.is_empty() || name.len() > MAX_NAME_BYTES {
            return Err(StorageError::invalid("user name length"));
        }
        let folded = fold_name(name);
        if self.user_names.contains_key(folded.as_bytes())? {
            return Err(StorageError::conflict("user name"));
        }
        let id = self.counters.next_user;
        // Ids at or above the journal's rollback flag would read as restores.
        if id >= crate::records::PixelRecord::ROLLBACK {
            return Err(StorageError::conflict("no more user ids"));
        }
        let user =
            User { id, name: name.to_owned(), role, password_hash: password_hash.to_owned(), created_ms: now_ms };
        let db = self.db;
        self.put(&db.users, id.to_be_bytes(), user.encode());
        self.put(&db.user_names, folded.into_bytes(), id.to_be_bytes());
        self.counters.next_user += 1;
        Ok(user)
    }

    /// Changes a user's role and records it in the audit log.
    pub fn set_role(&mut self, user: u32, role: Role, actor: u32, now_ms: u64) -> Result<User> {
        let mut record = self.user(user)?.ok_or_else(|| StorageError::not_found("user"))?;
        record.role = role;
        let db = self.db;
        self.put(&db.users, user.to_be_bytes(), record.encode());
        let detail = format!("{role:?}").to_lowercase();
        self.audit(actor, AuditAction::SetRole, &user.to_string(), &detail, now_ms);
        Ok(record)
    }

    /// Replaces a user's password hash.
    pub fn set_password_hash(&mut self, user: u32, password_hash: &str) -> Result<()> {
        let mut record = self.user(user)?.ok_or_else(|| StorageError::not_found("user"))?;
        record.password_hash = password_hash.to_owned();
        let db = self.db;
        self.put(&db.users, user.to_be_bytes(), record.encode());
        Ok(())
    }

    /// Stores a session for `user` under the hash of its token.
    pub fn create_session(
        &mut self,
        token_hash: [u8; TOKEN_HASH_LEN],
        user: u32,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Result<Session> {
        if self.user(user)?.is_none() {
            return Err(StorageError::not_found("user"));
        }
        let session = Session { user, created_ms: now_ms, expires_ms: now_ms.saturating_add(ttl_ms) };
        let db = self.db;
        self.put(&db.sessions, token_hash.to_vec(), session.encode());
        self.put(&db.user_sessions, key(&[&user.to_be_bytes(), &token_hash]), Vec::new());
        Ok(session)
    }

    /// Ends one session. Returns whether it existed.
    pub fn revoke_session(&mut self, token_hash: [u8; TOKEN_HASH_LEN]) -> Result<bool> {
        let Some(v) = self.sessions.get(token_hash)? else {
            return Ok(false);
        };
        let session = Session::decode(&v)?;
        let db = self.db;
        self.del(&db.sessions, token_hash.to_vec());
        self.del(&db.user_sessions, key(&[&session.user.to_be_bytes(), &token_hash]));
        Ok(true)
    }

    /// Ends every session of a user. Returns how many there were.
    pub fn revoke_user_sessions(&mut self, user: u32) -> Result<usize> {
        let mut hashes = Vec::new();
        for g in self.user_sessions.prefix(user.to_be_bytes()) {
            let k = g.key()?;
            hashes.push(k[4..].to_vec());
        }
        let db = self.db;
        for h in &hashes {
            self.del(&db.sessions, h.clone());
            self.del(&db.user_sessions, key(&[&user.to_be_bytes(), h]));
        }
        Ok(hashes.len())
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::temp_fjall;

    use super::*;

    #[test]
    fn names_are_unique_case_insensitively_and_ids_dense() {
        let (_dir, store) = temp_fjall();
        let a = store.run(|tx| tx.create_user("Alice", "h1", Role::User, 1)).unwrap();
        let b = store.run(|tx| tx.create_user("bob", "h2", Role::Admin, 2)).unwrap();
        assert_eq!((a.id, b.id), (1, 2));
        let dup = store.run(|tx| tx.create_user("ALICE", "h3", Role::User, 3)).unwrap_err();
        assert!(dup.is_conflict());
        assert_eq!(store.user_by_name("aLiCe").unwrap().unwrap().id, 1);
        assert_eq!(store.user(2).unwrap().unwrap().role, Role::Admin);
        assert_eq!(store.users(0, 10).unwrap().len(), 2);
        assert_eq!(store.user_count().unwrap(), 2);
        let c = store.run(|tx| tx.create_user("carol", "h", Role::User, 4)).unwrap();
        assert_eq!(c.id, 3, "a refused create does not burn an id");
        assert!(store.run(|tx| tx.create_user("", "h", Role::User, 4)).unwrap_err().is_invalid());
    }

    #[test]
    fn oversized_names_are_looked_up_without_reaching_the_store() {
        let (_dir, store) = temp_fjall();
        // 'İ' lowercases to three bytes: folded, this name would be a ~98 KB key, over the
        // LSM's key limit.
        let huge = "İ".repeat(32_700);
        assert!(store.user_by_name(&huge).unwrap().is_none());
        assert!(store.room_by_name(&huge).unwrap().is_none());
        assert!(store.user_by_name("").unwrap().is_none());
    }

    #[test]
    fn sessions_expire_and_revoke() {
        let (_dir, store) = temp_fjall();
        let u = store.run(|tx| tx.create_user("u", "h", Role::User, 0)).unwrap();
        let (t1, t2) = ([1u8; 32], [2u8; 32]);
        store.run(move |tx| tx.create_session(t1, u.id, 100, 50)).unwrap();
        store.run(move |tx| tx.create_session(t2, u.id, 100, 50)).unwrap();
        assert_eq!(store.session(&t1, 149).unwrap().unwrap().user, u.id);
        assert!(store.session(&t1, 150).unwrap().is_none(), "expired");
        assert!(store.run(move |tx| tx.revoke_session(t1)).unwrap());
        assert!(store.session(&t1, 120).unwrap().is_none());
        assert_eq!(store.run(move |tx| tx.revoke_user_sessions(u.id)).unwrap(), 1);
        assert!(store.session(&t2, 120).unwrap().is_none());
        assert!(store.run(move |tx| tx.create_session(t1, 99, 0, 1)).unwrap_err().is_not_found());
    }

    #[test]
    fn roles_change_with_audit() {
        let (_dir, store) = temp_fjall();
        let u = store.run(|tx| tx.create_user("u", "h", Role::User, 0)).unwrap();
        store.run(move |tx| tx.set_role(u.id, Role::Admin, 0, 5)).unwrap();
        assert_eq!(store.user(u.id).unwrap().unwrap().role, Role::Admin);
        let log = store.audit_log(u64::MAX, 10).unwrap();
        assert_eq!(log[0].action, AuditAction::SetRole);
    }
}
