//! Address bans checked at accept, before any work: an in-memory copy of the store's bans,
//! replaced whenever a ban is added or lifted through this process.

use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::RwLock;
use pixelparty_storage::{NetBan, Store};

/// The cached list of address bans.
#[derive(Debug, Default)]
pub struct BanCache {
    bans: RwLock<Arc<Vec<NetBan>>>,
}

impl BanCache {
    /// Reloads the list from the store.
    pub fn reload(&self, store: &Store) -> Result<(), pixelparty_storage::StorageError> {
        let list = store.net_bans()?;
        *self.bans.write() = Arc::new(list);
        Ok(())
    }

    /// The ban in force on `addr` at `now_ms`, if any.
    pub fn find(&self, addr: IpAddr, now_ms: u64) -> Option<NetBan> {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        let bans = self.bans.read().clone();
        bans.iter().find(|b| b.net.contains(&addr) && b.ban.active_at(now_ms)).cloned()
    }
}
