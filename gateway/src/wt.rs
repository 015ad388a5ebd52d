//! WebTransport sessions (HTTP/3 over QUIC, on quinn through the `wtransport` crate): the same
//! protocol and the same engine as the WebSocket.
//!
//! Every shard binds the UDP address with `SO_REUSEPORT` and runs its own endpoint, so a
//! session lives on the shard that accepted it (migration is off, so the kernel keeps a
//! client's packets on one socket). A session is authenticated in its CONNECT request
//! (`/wt?ticket=` from `POST /wt/ticket`, or `?token=` for bots), refused before the handshake
//! when its address is banned, and must open exactly one bidirectional stream, which carries
//! frames back to back (PROTOCOL.md section 1). Other streams and datagrams close it.
//!
//! Without configured certificate files a self-signed ECDSA P-256 certificate valid for 13
//! days is generated at start and replaced every 10 days; the hashes of the current and the
//! previous one are published for `serverCertificateHashes`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use pixelparty_engine::{LocalShard, UserCtx, now_ms};
use pixelparty_protocol::CloseReason;
use wtransport::endpoint::IncomingSession;
use wtransport::quinn::{TransportConfig, VarInt as QVarInt};
use wtransport::{Connection, Endpoint, Identity, ServerConfig, VarInt};

use crate::app::{App, ConnSlot, sha256};
use crate::config::WebTransportSection;

/// Validity of a generated certificate (browsers accept at most 14 days for hashes).
const SELF_SIGNED_DAYS: u32 = 13;
/// A generated certificate is replaced after this long.
const ROTATE_AFTER: Duration = Duration::from_secs(10 * 24 * 3600);
/// How long a ticket from `POST /wt/ticket` stays valid.
const TICKET_MS: u64 = 60_000;
/// Most outstanding tickets.
const MAX_TICKETS: usize = 100_000;
/// Most outstanding tickets of one user: a new one beyond it replaces the user's oldest, so
/// no user can fill the table for everyone.
const MAX_TICKETS_PER_USER: usize = 8;
/// Largest frame backlog a session may hold while a frame is incomplete.
const MAX_PENDING: usize =
    pixelparty_protocol::limits::FRAME_HEADER_LEN + pixelparty_protocol::limits::MAX_FRAME_PAYLOAD;

/// The WebTransport side of the process: identity, published hashes, tickets.
pub struct WtState {
    /// URL advertised to clients.
    pub url: String,
    settings: WebTransportSection,
    identity: RwLock<Identity>,
    hashes: RwLock<Vec<[u8; 32]>>,
    generation: AtomicU64,
    self_signed: bool,
    tickets: Mutex<Tickets>,
}

impl std::fmt::Debug for WtState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WtState").field("url", &self.url).finish_non_exhaustive()
    }
}

fn self_signed() -> Result<Identity, String> {
    Identity::self_signed_builder()
        .subject_alt_names(["localhost", "127.0.0.1", "::1"])
        .from_now_utc()
        .validity_days(SELF_SIGNED_DAYS)
        .build()
        .map_err(|e| e.to_string())
}

fn leaf_hash(identity: &Identity) -> [u8; 32] {
    identity.certificate_chain().as_slice().first().map_or([0; 32], |c| sha256(c.der()))
}

impl WtState {
    /// Loads the configured certificate or generates one; `bound` is the UDP address actually
    /// bound (advertised unless `public_url` says otherwise).
    pub fn new(settings: &WebTransportSection, bound: SocketAddr) -> Result<Self, String> {
        let (identity, self_signed) = match (&settings.cert_file, &settings.key_file) {
            (Some(cert), Some(key)) => {
                let rt =
                    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
                let id = rt
                    .block_on(Identity::load_pemfiles(cert, key))
                    .map_err(|e| format!("loading the WebTransport certificate: {e}"))?;
                (id, false)
            }
            _ => (self_signed()?, true),
        };
        let url = settings.public_url.clone().unwrap_or_else(|| format!("https://{bound}/wt"));
        Ok(Self {
            url,
            settings: settings.clone(),
            hashes: RwLock::new(vec![leaf_hash(&identity)]),
            identity: RwLock::new(identity),
            generation: AtomicU64::new(1),
            self_signed,
            tickets: Mutex::new(Tickets::default()),
        })
    }

    /// SHA-256 of the certificates clients may see (newest first), lowercase hex.
    pub fn hashes_hex(&self) -> Vec<String> {
        self.hashes.read().iter().map(|h| h.iter().map(|b| format!("{b:02x}")).collect()).collect()
    }

    /// Replaces a generated certificate (called every [`ROTATE_AFTER`]); keeps the previous
    /// hash published so that clients that fetched it just before still connect.
    pub fn rotate(&self) -> Result<(), String> {
        if !self.self_signed {
            return Ok(());
        }
        let next = self_signed()?;
        let hash = leaf_hash(&next);
        *self.identity.write() = next;
        let mut hashes = self.hashes.write();
        hashes.insert(0, hash);
        hashes.truncate(2);
        self.generation.fetch_add(1, Ordering::Release);
        tracing::info!("WebTransport certificate rotated");
        Ok(())
    }

    fn transport(&self) -> TransportConfig {
        let s = &self.settings;
        let mut t = TransportConfig::default();
        // The HTTP/3 CONNECT stream, the session's stream, and one more so a client that opens
        // a second one can be told off instead of silently blocked.
        t.max_concurrent_bidi_streams(QVarInt::from_u32(3));
        // HTTP/3 control and QPACK streams, plus one to detect a WebTransport uni stream.
        t.max_concurrent_uni_streams(QVarInt::from_u32(4));
        t.stream_receive_window(QVarInt::from_u32(s.stream_window));
        t.receive_window(QVarInt::from_u32(s.connection_window));
        t.send_window(u64::from(s.connection_window) * 4);
        t.max_idle_timeout(wtransport::quinn::IdleTimeout::try_from(Duration::from_millis(s.idle_timeout_ms)).ok());
        t.datagram_receive_buffer_size(None);
        t
    }

    /// A server configuration on `socket` (or, for a reload, any socket) with the current
    /// identity.
    fn server_config(&self, socket: Option<std::net::UdpSocket>) -> ServerConfig {
        let identity = self.identity.read().clone_identity();
        let builder = ServerConfig::builder();
        let builder = match socket {
            Some(s) => builder.with_bind_socket(s),
            None => builder.with_bind_default(0),
        };
        builder.with_custom_transport(identity, self.transport()).allow_migration(false).build()
    }

    /// Issues a single-use ticket for `user`, standing for the login session with
    /// `token_hash` (the WebTransport session opened with it ends with that login).
    pub fn issue_ticket(&self, user: u32, token_hash: [u8; 32]) -> Result<String, String> {
        let mut raw = [0u8; 24];
        getrandom::fill(&mut raw).map_err(|e| e.to_string())?;
        let ticket: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        self.tickets.lock().issue(sha256(ticket.as_bytes()), user, token_hash, now_ms())?;
        Ok(ticket)
    }

    /// The login session a ticket stands for, once.
    fn redeem(&self, ticket: &str) -> Option<[u8; 32]> {
        self.tickets.lock().redeem(&sha256(ticket.as_bytes()), now_ms())
    }
}

/// Outstanding tickets by hash, and each user's (oldest first).
#[derive(Debug, Default)]
struct Tickets {
    /// Ticket hash → (user, login session token hash, expiry).
    by_hash: HashMap<[u8; 32], (u32, [u8; 32], u64)>,
    by_user: HashMap<u32, std::collections::VecDeque<[u8; 32]>>,
}

impl Tickets {
    fn issue(&mut self, hash: [u8; 32], user: u32, token_hash: [u8; 32], now: u64) -> Result<(), String> {
        if self.by_hash.len() >= MAX_TICKETS {
            self.by_hash.retain(|_, (_, _, exp)| *exp > now);
            let live = &self.by_hash;
            self.by_user.retain(|_, list| {
                list.retain(|h| live.contains_key(h));
                !list.is_empty()
            });
            if self.by_hash.len() >= MAX_TICKETS {
                return Err("too many outstanding tickets".into());
            }
        }
        let list = self.by_user.entry(user).or_default();
        if list.len() >= MAX_TICKETS_PER_USER
            && let Some(oldest) = list.pop_front()
        {
            self.by_hash.remove(&oldest);
        }
        list.push_back(hash);
        self.by_hash.insert(hash, (user, token_hash, now + TICKET_MS));
        Ok(())
    }

    fn redeem(&mut self, hash: &[u8; 32], now: u64) -> Option<[u8; 32]> {
        let (user, token_hash, exp) = self.by_hash.remove(hash)?;
        if let Some(list) = self.by_user.get_mut(&user) {
            list.retain(|h| h != hash);
            if list.is_empty() {
                self.by_user.remove(&user);
            }
        }
        (now < exp).then_some(token_hash)
    }
}

/// A UDP socket bound with `SO_REUSEPORT`.
pub fn reuseport_udp(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    Ok(crate::server::reuseport_socket(addr, socket2::Type::DGRAM, socket2::Protocol::UDP)?.into())
}

/// Runs one shard's endpoint on `socket` until the shard stops.
pub async fn serve(shard: LocalShard, app: Arc<App>, wt: Arc<WtState>, socket: std::net::UdpSocket) {
    let endpoint = match Endpoint::server(wt.server_config(Some(socket))) {
        Ok(e) => e,
        Err(e) => return tracing::error!(error = %e, "WebTransport endpoint"),
    };
    let mut generation = wt.generation.load(Ordering::Acquire);
    let mut check = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let (shard, app) = (shard.clone(), app.clone());
                let wt = wt.clone();
                tokio::task::spawn_local(async move { accept(shard, app, wt, incoming).await });
            }
            _ = check.tick() => {
                let now = wt.generation.load(Ordering::Acquire);
                if now != generation {
                    generation = now;
                    if let Err(e) = endpoint.reload_config(wt.server_config(None), false) {
                        tracing::error!(error = %e, "reloading the WebTransport certificate");
                    }
                }
            }
        }
    }
}

/// Rotates a generated certificate on a thread of its own.
pub fn spawn_rotation(wt: Arc<WtState>) -> std::io::Result<()> {
    if !wt.self_signed {
        return Ok(());
    }
    std::thread::Builder::new().name("wt-cert".into()).spawn(move || {
        loop {
            std::thread::sleep(ROTATE_AFTER);
            if let Err(e) = wt.rotate() {
                tracing::error!(error = %e, "rotating the WebTransport certificate");
            }
        }
    })?;
    Ok(())
}

fn query_param<'a>(path: &'a str, key: &str) -> Option<&'a str> {
    path.split_once('?')?.1.split('&').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// The session's user from a ticket or a token, with the login session and the address it
/// will end with (see [`App::authenticate`]); or, for `?visitor=1` without either, a visitor
/// (no token, a visitor slot).
async fn authenticate(
    app: &Arc<App>,
    wt: &WtState,
    path: &str,
    addr: std::net::IpAddr,
) -> Option<(UserCtx, Option<[u8; 32]>, Option<crate::app::VisitorSlot>)> {
    let token_hash = match (query_param(path, "ticket"), query_param(path, "token")) {
        (Some(ticket), _) => wt.redeem(ticket)?,
        (None, Some(token)) => sha256(token.as_bytes()),
        (None, None) if query_param(path, "visitor") == Some("1") => {
            // Over `limits.max_visitors`: `None` here, answered 429 by the caller.
            return Some((UserCtx::visitor(addr), None, app.admit_visitor()));
        }
        (None, None) => return None,
    };
    let user = app.authenticate(token_hash, now_ms()).await.ok()?;
    let blocks = app.blocks_of(user.id).await.ok()?;
    Some((user.session_ctx(addr, blocks), Some(token_hash), None))
}

async fn accept(shard: LocalShard, app: Arc<App>, wt: Arc<WtState>, incoming: IncomingSession) {
    let peer = incoming.remote_address();
    let ip = match peer.ip() {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer.ip(), std::net::IpAddr::V4),
        v4 => v4,
    };
    if app.bans.find(ip, now_ms()).is_some() {
        app.metrics.accept_banned.inc();
        return incoming.refuse(); // Before the handshake: no work for a banned address.
    }
    if !app.accepting.load(Ordering::Acquire) {
        return incoming.refuse();
    }
    let Some(slot) = app.admit(ip) else {
        return incoming.refuse();
    };
    let Ok(request) = incoming.await else { return };
    let path = request.path().to_owned();
    if path.split('?').next() != Some("/wt") {
        return request.not_found().await;
    }
    let Some((user, token_hash, visitor)) = authenticate(&app, &wt, &path, ip).await else {
        app.metrics.ws_refused.inc();
        return request.forbidden().await;
    };
    if token_hash.is_none() && visitor.is_none() {
        app.metrics.ws_refused.inc();
        return request.too_many_requests().await;
    }
    let Ok(conn) = request.accept().await else { return };
    let stream = tokio::time::timeout(Duration::from_secs(10), conn.accept_bi()).await;
    let Ok(Ok((send, recv))) = stream else {
        conn.close(
            VarInt::from_u32(u32::from(CloseReason::ProtocolViolation.close_code())),
            b"open one bidirectional stream",
        );
        return;
    };
    app.metrics.ws_opened.inc();
    let attendance = app.attend(user.id, visitor);
    run(shard, app, (slot, attendance), conn, send, recv, user, token_hash).await;
}

#[expect(clippy::too_many_arguments, reason = "the parts of one accepted session, each used once")]
async fn run(
    shard: LocalShard,
    app: Arc<App>,
    _slot: (ConnSlot, crate::app::Attendance),
    conn: Connection,
    mut send: wtransport::SendStream,
    mut recv: wtransport::RecvStream,
    user: UserCtx,
    token_hash: Option<[u8; 32]>,
) {
    let write_timeout = Duration::from_millis(app.config.server.write_timeout_ms);
    let (addr, user_id) = (user.addr, user.id);
    let id = shard.connect(user);
    {
        let (shard, app) = (shard.clone(), app.clone());
        tokio::task::spawn_local(async move { app.recheck(&shard, id, user_id, token_hash, addr).await });
    }
    let mut chunk = vec![0u8; 16 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let mut out: Vec<Bytes> = Vec::new();
    loop {
        tokio::select! {
            read = recv.read(&mut chunk) => match read {
                Ok(Some(n)) => {
                    pending.extend_from_slice(&chunk[..n]);
                    let used = shard.receive(id, &pending);
                    pending.drain(..used);
                    if pending.len() > MAX_PENDING {
                        shard.close(id, CloseReason::ProtocolViolation, "frame larger than the limit");
                    }
                    if pending.is_empty() && pending.capacity() > 0 {
                        pending = Vec::new();
                    }
                }
                Ok(None) | Err(_) => break,
            },
            close = shard.next_output(id, pixelparty_protocol::limits::MAX_TRANSPORT_MESSAGE, &mut out) => {
                // A peer that stops reading holds the write up (QUIC flow control): it gets
                // the write timeout, then the connection is dropped.
                let mut failed = false;
                for bytes in out.drain(..) {
                    if !matches!(tokio::time::timeout(write_timeout, send.write_all(&bytes)).await, Ok(Ok(()))) {
                        failed = true;
                        break;
                    }
                }
                if failed {
                    app.metrics.write_timeouts.inc();
                    out.clear();
                    conn.close(VarInt::from_u32(u32::from(CloseReason::SlowConsumer.close_code())), b"slow_consumer");
                    break;
                }
                if let Some(c) = close {
                    // Closing the connection drops unsent stream data: finish the stream and
                    // give the peer a moment to read the Closing frame first.
                    if send.finish().await.is_ok() {
                        let _ = tokio::time::timeout(Duration::from_secs(2), send.stopped()).await;
                    }
                    conn.close(VarInt::from_u32(u32::from(c.reason.close_code())), c.reason.name().as_bytes());
                    break;
                }
            }
            extra = conn.accept_bi() => {
                if let Ok((mut s, _)) = extra {
                    let _ = s.reset(VarInt::from_u32(0));
                }
                shard.close(id, CloseReason::ProtocolViolation, "one bidirectional stream per session");
            }
            _ = conn.accept_uni() => shard.close(id, CloseReason::ProtocolViolation, "no unidirectional streams in protocol version 1"),
            _ = conn.receive_datagram() => shard.close(id, CloseReason::ProtocolViolation, "no datagrams in protocol version 1"),
            _ = conn.closed() => break,
        }
    }
    shard.disconnect(id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params() {
        assert_eq!(query_param("/wt?ticket=abc&x=1", "ticket"), Some("abc"));
        assert_eq!(query_param("/wt?x=1&token=t", "token"), Some("t"));
        assert_eq!(query_param("/wt", "token"), None);
        assert_eq!(query_param("/wt?tokens=x", "token"), None);
    }

    #[test]
    fn tickets_are_single_use() {
        let s = WtState::new(&WebTransportSection::default(), "127.0.0.1:8443".parse().unwrap()).unwrap();
        let t = s.issue_ticket(7, [7; 32]).unwrap();
        assert_eq!(s.redeem(&t), Some([7; 32]), "the login session it stands for");
        assert_eq!(s.redeem(&t), None);
        assert_eq!(s.redeem("forged"), None);
        // One user's ninth ticket replaces its first: no user fills the table.
        let first = s.issue_ticket(9, [9; 32]).unwrap();
        let rest: Vec<String> = (0..MAX_TICKETS_PER_USER).map(|_| s.issue_ticket(9, [9; 32]).unwrap()).collect();
        assert_eq!(s.redeem(&first), None, "replaced");
        assert!(rest.iter().all(|t| s.redeem(t) == Some([9; 32])));
        assert!(s.tickets.lock().by_user.is_empty(), "redeemed tickets leave no trace");
        assert_eq!(s.hashes_hex().len(), 1);
        s.rotate().unwrap();
        assert_eq!(s.hashes_hex().len(), 2, "the previous hash stays published");
    }
}
