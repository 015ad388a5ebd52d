//! Moderation: user bans, address (CIDR) bans, and the audit log of every moderation action.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::db::{Db, names};
use crate::error::{Result, StorageError};
use crate::records::{AuditAction, AuditEntry, Ban, NetBan, net_from_key, net_key};
use crate::writer::Tx;

/// Most address bans the store keeps (each is checked on every accepted connection, from a
/// cache the gateway holds).
pub const MAX_NET_BANS: usize = 100_000;

impl Db {
    /// The ban in force on `user` at `now_ms`, if any.
    pub fn user_ban(&self, user: u32, now_ms: u64) -> Result<Option<Ban>> {
        let Some(v) = self.user_bans.get(user.to_be_bytes())? else {
            return Ok(None);
        };
        let ban = Ban::decode(names::USER_BANS, &v)?;
        Ok(ban.active_at(now_ms).then_some(ban))
    }

    /// Every user ban (including expired ones not yet lifted), by user id.
    pub fn user_bans(&self, limit: usize) -> Result<Vec<(u32, Ban)>> {
        self.user_bans
            .iter()
            .take(limit)
            .map(|g| {
                let (k, v) = g.into_inner()?;
                let user = crate::codec::key_u32(names::USER_BANS, &k, 0)?;
                Ok((user, Ban::decode(names::USER_BANS, &v)?))
            })
            .collect()
    }

    /// Every address ban.
    pub fn net_bans(&self) -> Result<Vec<NetBan>> {
        self.net_bans
            .iter()
            .take(MAX_NET_BANS)
            .map(|g| {
                let (k, v) = g.into_inner()?;
                let net = net_from_key(&k).ok_or_else(|| StorageError::corrupt(names::NET_BANS, "bad network key"))?;
                Ok(NetBan { net, ban: Ban::decode(names::NET_BANS, &v)? })
            })
            .collect()
    }

    /// The first ban in force at `now_ms` whose range contains `addr` (a linear scan: callers
    /// on a hot path keep their own cache of [`Db::net_bans`]).
    pub fn net_ban_for(&self, addr: IpAddr, now_ms: u64) -> Result<Option<NetBan>> {
        Ok(self.net_bans()?.into_iter().find(|b| b.net.contains(&addr) && b.ban.active_at(now_ms)))
    }

    /// Up to `limit` audit entries with `seq < before`, newest first.
    pub fn audit_log(&self, before: u64, limit: usize) -> Result<Vec<AuditEntry>> {
        self.audit
            .range(..before.to_be_bytes())
            .rev()
            .take(limit)
            .map(|g| {
                let (k, v) = g.into_inner()?;
                AuditEntry::decode(crate::codec::key_u64(names::AUDIT, &k, 0)?, &v)
            })
            .collect()
    }
}

impl Tx<'_> {
    /// Appends an entry to the audit log.
    pub fn audit(&mut self, actor: u32, action: AuditAction, target: &str, detail: &str, now_ms: u64) {
        let seq = self.counters.next_audit;
        self.counters.next_audit += 1;
        let entry =
            AuditEntry { seq, time_ms: now_ms, actor, action, target: target.to_owned(), detail: detail.to_owned() };
        let db = self.db;
        self.put(&db.audit, seq.to_be_bytes(), entry.encode());
    }

    /// Bans a user (replacing any earlier ban). Their login sessions are kept, so that every
    /// request made with one is answered `banned` with the reason and the end of the ban
    /// (callers check [`Db::user_ban`] on every authentication) rather than a bare "unknown
    /// session"; they work again once a temporary ban ends.
    pub fn ban_user(&mut self, user: u32, ban: &Ban) -> Result<()> {
        if self.user(user)?.is_none() {
            return Err(StorageError::not_found("user"));
        }
        let db = self.db;
        self.put(&db.user_bans, user.to_be_bytes(), ban.encode());
        let detail = match ban.expires_ms {
            Some(until) => format!("{} (until {until})", ban.reason),
            None => ban.reason.clone(),
        };
        self.audit(ban.by, AuditAction::BanUser, &user.to_string(), &detail, ban.created_ms);
        Ok(())
    }

    /// Lifts a user ban. Returns whether there was one.
    pub fn unban_user(&mut self, user: u32, actor: u32, now_ms: u64) -> Result<bool> {
        if !self.user_bans.contains_key(user.to_be_bytes())? {
            return Ok(false);
        }
        let db = self.db;
        self.del(&db.user_bans, user.to_be_bytes());
        self.audit(actor, AuditAction::UnbanUser, &user.to_string(), "", now_ms);
        Ok(true)
    }

    /// Bans an address range (host bits are cleared).
    pub fn ban_net(&mut self, net: IpNet, ban: &Ban) -> Result<()> {
        let key = net_key(&net);
        if !self.net_bans.contains_key(&key)? && self.net_bans.len()? >= MAX_NET_BANS {
            return Err(StorageError::conflict("too many address bans"));
        }
        let db = self.db;
        self.put(&db.net_bans, key, ban.encode());
        self.audit(ban.by, AuditAction::BanNet, &net.trunc().to_string(), &ban.reason, ban.created_ms);
        Ok(())
    }

    /// Lifts an address ban. Returns whether there was one.
    pub fn unban_net(&mut self, net: IpNet, actor: u32, now_ms: u64) -> Result<bool> {
        let key = net_key(&net);
        if !self.net_bans.contains_key(&key)? {
            return Ok(false);
        }
        let db = self.db;
        self.del(&db.net_bans, key);
        self.audit(actor, AuditAction::UnbanNet, &net.trunc().to_string(), "", now_ms);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use crate::records::Role;
    use crate::testing::temp_fjall;

    use super::*;

    fn ban(reason: &str, expires_ms: Option<u64>) -> Ban {
        Ban { reason: reason.into(), by: 1, created_ms: 10, expires_ms }
    }

    #[test]
    fn user_bans_expire_and_lift() {
        let (_dir, store) = temp_fjall();
        let u = store.run(|tx| tx.create_user("u", "h", Role::User, 0)).unwrap();
        store.run(move |tx| tx.create_session([7; 32], u.id, 0, 1000)).unwrap();
        store.run(move |tx| tx.ban_user(u.id, &ban("spam", Some(100)))).unwrap();
        assert_eq!(store.user_ban(u.id, 50).unwrap().unwrap().reason, "spam");
        assert!(store.user_ban(u.id, 100).unwrap().is_none(), "expired");
        assert!(store.session(&[7; 32], 5).unwrap().is_some(), "sessions stay: authentication says banned");
        assert!(store.run(move |tx| tx.unban_user(u.id, 1, 60)).unwrap());
        assert!(store.user_ban(u.id, 50).unwrap().is_none());
        let log = store.audit_log(u64::MAX, 10).unwrap();
        assert_eq!(log.iter().map(|e| e.action).collect::<Vec<_>>(), [AuditAction::UnbanUser, AuditAction::BanUser]);
        assert!(store.run(|tx| tx.ban_user(42, &ban("x", None))).unwrap_err().is_not_found());
    }

    #[test]
    fn net_bans_match_ranges_of_both_families() {
        let (_dir, store) = temp_fjall();
        store.run(|tx| tx.ban_net("10.1.0.0/16".parse().unwrap(), &ban("abuse", None))).unwrap();
        store.run(|tx| tx.ban_net("2001:db8::/32".parse().unwrap(), &ban("v6", None))).unwrap();
        store.run(|tx| tx.ban_net("127.0.0.9/32".parse().unwrap(), &ban("one", None))).unwrap();
        let hit = |a: &str| store.net_ban_for(a.parse().unwrap(), 0).unwrap().map(|b| b.ban.reason);
        assert_eq!(hit("10.1.200.3").as_deref(), Some("abuse"));
        assert_eq!(hit("10.2.0.1"), None);
        assert_eq!(hit("2001:db8:1::5").as_deref(), Some("v6"));
        assert_eq!(hit("127.0.0.9").as_deref(), Some("one"));
        assert_eq!(hit("127.0.0.1"), None);
        assert_eq!(store.net_bans().unwrap().len(), 3);
        assert!(store.run(|tx| tx.unban_net("10.1.9.9/16".parse().unwrap(), 1, 0)).unwrap());
        assert_eq!(hit("10.1.200.3"), None);
    }
}
