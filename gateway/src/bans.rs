//! Address bans checked at accept, before any work: an in-memory copy of the store's bans,
//! replaced whenever a ban is added or lifted through this process, and the fixed answer a
//! banned address gets.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::RwLock;
use pixelparty_storage::NetBan;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The JSON body of the answer to a banned address.
const BANNED_BODY: &str = r#"{"error":"banned","message":"this address is banned"}"#;

/// Connections from banned addresses being answered at once; beyond this they are simply
/// closed (a flood from banned ranges must not cost more than this).
const MAX_REFUSING: usize = 256;

/// How long a refused connection may take to send its request before it is closed.
const REFUSE_LINGER: Duration = Duration::from_secs(1);

/// The whole HTTP response a banned address gets, encoded once.
fn banned_response() -> &'static [u8] {
    static RESPONSE: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
        format!(
            "HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BANNED_BODY}",
            BANNED_BODY.len()
        )
        .into_bytes()
    });
    &RESPONSE
}

/// Answers a connection from a banned address with a fixed 403 (no parsing, no session
/// lookup) and closes it. The request is read and discarded for at most a second first, so
/// that the close does not turn into a reset that would hide the answer from the client.
pub fn refuse(mut stream: TcpStream) {
    static REFUSING: AtomicUsize = AtomicUsize::new(0);
    /// Gives the slot back however the task ends (also when its runtime drops it).
    struct Slot;
    impl Drop for Slot {
        fn drop(&mut self) {
            REFUSING.fetch_sub(1, Ordering::AcqRel);
        }
    }
    let slot = Slot;
    if REFUSING.fetch_add(1, Ordering::AcqRel) >= MAX_REFUSING {
        return; // Dropped: closed without an answer.
    }
    tokio::task::spawn_local(async move {
        let _slot = slot;
        // A fresh socket's send buffer takes these few bytes at once.
        if stream.try_write(banned_response()).is_ok() && stream.shutdown().await.is_ok() {
            let mut sink = [0u8; 1024];
            let _ = tokio::time::timeout(REFUSE_LINGER, async {
                let mut left = 16 * 1024usize;
                while left > 0 {
                    match stream.read(&mut sink).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => left = left.saturating_sub(n),
                    }
                }
            })
            .await;
        }
    });
}

/// The cached list of address bans.
#[derive(Debug, Default)]
pub struct BanCache {
    /// The list, with the ticket of the read it came from.
    bans: RwLock<(u64, Arc<Vec<NetBan>>)>,
    tickets: AtomicU64,
}

impl BanCache {
    /// A ticket to take before reading the list from the store (see [`BanCache::set`]).
    pub fn ticket(&self) -> u64 {
        self.tickets.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Replaces the list with one read from the store after `ticket` was taken, unless a read
    /// started later has already replaced it (two reloads racing must not leave the older).
    pub fn set(&self, ticket: u64, list: Vec<NetBan>) {
        let mut bans = self.bans.write();
        if ticket > bans.0 {
            *bans = (ticket, Arc::new(list));
        }
    }

    /// The ban in force on `addr` at `now_ms`, if any.
    pub fn find(&self, addr: IpAddr, now_ms: u64) -> Option<NetBan> {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        let bans = self.bans.read().1.clone();
        bans.iter().find(|b| b.net.contains(&addr) && b.ban.active_at(now_ms)).cloned()
    }
}
