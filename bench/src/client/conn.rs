//! One WebSocket session speaking the binary protocol.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use pixelparty_protocol::client::{
    Delete, Hello, HistoryRequest, Paint, Ping, RoomRequest, SendDirect, SendRoom, Subscribe, Unsubscribe,
};
use pixelparty_protocol::limits::PROTOCOL_VERSION;
pub use pixelparty_protocol::owned::Event;
use pixelparty_protocol::types::WireTile;
use pixelparty_protocol::{ClientFrame, ClientKind, ConvKind, Geometry, Role, ServerFrame, TileCursor, server_frames};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::error::ClientError;
use super::replica::{Applied, Replica};

/// How to open a session.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Local address to connect from (spread load clients over 127.0.0.x to pass the
    /// ephemeral-port limit).
    pub source_ip: Option<IpAddr>,
    /// `Origin` header to send (browsers always send one; bots need not).
    pub origin: Option<String>,
    /// Client kind announced in `Hello`.
    pub kind: ClientKind,
    /// Agent string announced in `Hello`.
    pub agent: String,
    /// WebSocket read buffer (small keeps many connections cheap).
    pub read_buffer: usize,
    /// The TCP socket's receive buffer (`SO_RCVBUF`) for WebSocket sessions; `None` leaves
    /// the kernel's autotuning on. A fixed small buffer bounds what a session that is not
    /// read can hold (and fixes the TCP window the server sees).
    pub socket_recv_buffer: Option<u32>,
    /// Longest wait in [`Connection::wait_for`].
    pub timeout: Duration,
    /// Transport to use.
    pub transport: TransportKind,
    /// Protocol version announced in `Hello` (older ones for compatibility tests).
    pub version: u16,
}

/// Which transport a session uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TransportKind {
    /// WebSocket (`/ws`).
    #[default]
    Ws,
    /// WebTransport over HTTP/3 (the URL and certificate hashes come from `GET /canvas`).
    Wt,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            source_ip: None,
            origin: None,
            kind: ClientKind::Bot,
            agent: concat!("pixelparty-bench/", env!("CARGO_PKG_VERSION")).into(),
            read_buffer: 8 * 1024,
            socket_recv_buffer: None,
            timeout: Duration::from_secs(10),
            transport: TransportKind::Ws,
            version: PROTOCOL_VERSION,
        }
    }
}

/// What `Welcome` said.
#[derive(Debug, Clone)]
pub struct WelcomeInfo {
    /// User id.
    pub user: u32,
    /// Role.
    pub role: Role,
    /// Name.
    pub name: String,
    /// Canvas shape.
    pub geometry: Geometry,
    /// Palette.
    pub palette: Vec<[u8; 3]>,
    /// Cooldown length.
    pub cooldown_ms: u32,
    /// When the user may paint next.
    pub ready_at_ms: u64,
    /// Server clock at handshake.
    pub server_time_ms: u64,
}

/// The transport under a session.
enum Transport {
    Ws(Box<WebSocketStream<TcpStream>>),
    Wt(Box<WtStream>),
}

/// A WebTransport session and its one bidirectional stream.
struct WtStream {
    endpoint: wtransport::Endpoint<wtransport::endpoint::endpoint_side::Client>,
    conn: wtransport::Connection,
    send: wtransport::SendStream,
    recv: wtransport::RecvStream,
    buf: BytesMut,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Ws(_) => "WebSocket",
            Self::Wt(_) => "WebTransport",
        })
    }
}

/// A session with the server.
#[derive(Debug)]
pub struct Connection {
    transport: Transport,
    /// What the server said at the handshake.
    pub welcome: WelcomeInfo,
    /// The canvas replica this session keeps current, if any.
    pub replica: Option<Replica>,
    next_req: u32,
    events: VecDeque<Event>,
    closed: Option<String>,
    encode_buf: BytesMut,
    timeout: Duration,
}

/// Opens a TCP connection to `addr`, from `source` when given.
pub async fn tcp_from(addr: SocketAddr, source: Option<IpAddr>) -> Result<TcpStream, ClientError> {
    tcp_with(addr, source, None).await
}

/// [`tcp_from`] with a fixed socket receive buffer when `recv_buffer` is given.
async fn tcp_with(
    addr: SocketAddr,
    source: Option<IpAddr>,
    recv_buffer: Option<u32>,
) -> Result<TcpStream, ClientError> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl Connection {
    /// Opens a logged-out visitor's read-only session (protocol version 3): it may subscribe
    /// to tiles and watch, nothing else.
    pub async fn visitor(addr: SocketAddr, options: ConnectOptions) -> Result<Self, ClientError> {
        Self::connect(addr, "", options).await
    }

    /// Connects to `addr` with a session token (empty: as a visitor, see [`Self::visitor`])
    /// and completes the handshake.
    pub async fn connect(addr: SocketAddr, token: &str, options: ConnectOptions) -> Result<Self, ClientError> {
        let transport = match options.transport {
            TransportKind::Ws => Transport::Ws(Box::new(Self::open_ws(addr, token, &options).await?)),
            TransportKind::Wt => Self::open_wt(addr, token, &options).await?,
        };
        let placeholder = WelcomeInfo {
            user: 0,
            role: Role::User,
            name: String::new(),
            geometry: Geometry::new(8, 8, 1, 8).map_err(|e| ClientError::Protocol(e.to_string()))?,
            palette: Vec::new(),
            cooldown_ms: 0,
            ready_at_ms: 0,
            server_time_ms: 0,
        };
        let mut conn = Self {
            transport,
            welcome: placeholder,
            replica: None,
            next_req: 1,
            events: VecDeque::new(),
            closed: None,
            encode_buf: BytesMut::new(),
            timeout: options.timeout,
        };
        conn.send(&ClientFrame::Hello(Hello { version: options.version, kind: options.kind, agent: &options.agent }))
            .await?;
        let welcome =
            tokio::time::timeout(conn.timeout, conn.read_welcome()).await.map_err(|_| ClientError::Timeout)??;
        conn.welcome = welcome;
        Ok(conn)
    }

    async fn open_ws(
        addr: SocketAddr,
        token: &str,
        options: &ConnectOptions,
    ) -> Result<WebSocketStream<TcpStream>, ClientError> {
        let stream = tcp_with(addr, options.source_ip, options.socket_recv_buffer).await?;
        let path = if token.is_empty() { "/ws?visitor=1" } else { "/ws" };
        let mut request =
            format!("ws://{addr}{path}").into_client_request().map_err(|e| ClientError::WebSocket(e.to_string()))?;
        let header = |v: String| v.parse().map_err(|_| ClientError::WebSocket("bad header value".into()));
        if !token.is_empty() {
            request.headers_mut().insert("authorization", header(format!("Bearer {token}"))?);
        }
        if let Some(origin) = &options.origin {
            request.headers_mut().insert("origin", header(origin.clone())?);
        }
        let config = WebSocketConfig::default().read_buffer_size(options.read_buffer).write_buffer_size(0);
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await.map_err(|e| match e {
                tokio_tungstenite::tungstenite::Error::Http(resp) => ClientError::Status {
                    status: resp.status().as_u16(),
                    body: resp.body().as_ref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default(),
                },
                other => ClientError::WebSocket(other.to_string()),
            })?;
        Ok(ws)
    }

    /// Opens a WebTransport session: the URL and the certificate hashes to trust come from
    /// `GET /canvas`; the token travels in the CONNECT request's query.
    async fn open_wt(addr: SocketAddr, token: &str, options: &ConnectOptions) -> Result<Transport, ClientError> {
        let info = super::Api::new(addr).ok("GET", "/canvas", None, None).await?;
        let wt = &info["webtransport"];
        let url =
            wt["url"].as_str().ok_or_else(|| ClientError::Protocol("the server does not offer WebTransport".into()))?;
        let hashes: Vec<wtransport::tls::Sha256Digest> = wt["cert_hashes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|h| h.as_str())
                    .filter_map(|h| {
                        wtransport::tls::Sha256Digest::from_str_fmt(h, wtransport::tls::Sha256DigestFmt::DottedHex)
                            .ok()
                            .or_else(|| {
                                let bytes: Option<Vec<u8>> = (0..h.len())
                                    .step_by(2)
                                    .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
                                    .collect();
                                bytes.and_then(|b| <[u8; 32]>::try_from(b).ok()).map(wtransport::tls::Sha256Digest::new)
                            })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let builder = wtransport::ClientConfig::builder();
        let builder = match options.source_ip {
            Some(ip) => builder.with_bind_address(SocketAddr::new(ip, 0)),
            None => builder.with_bind_default(),
        };
        let config =
            builder.with_server_certificate_hashes(hashes).keep_alive_interval(Some(Duration::from_secs(15))).build();
        let endpoint = wtransport::Endpoint::client(config)?;
        let query = if token.is_empty() { "visitor=1".to_owned() } else { format!("token={token}") };
        let conn = endpoint.connect(format!("{url}?{query}")).await.map_err(|e| match e {
            wtransport::error::ConnectingError::SessionRejected => {
                ClientError::Status { status: 403, body: "session rejected".into() }
            }
            other => ClientError::WebSocket(format!("webtransport: {other}")),
        })?;
        let (send, recv) = conn
            .open_bi()
            .await
            .map_err(|e| ClientError::WebSocket(e.to_string()))?
            .await
            .map_err(|e| ClientError::WebSocket(e.to_string()))?;
        Ok(Transport::Wt(Box::new(WtStream { endpoint, conn, send, recv, buf: BytesMut::new() })))
    }

    async fn read_welcome(&mut self) -> Result<WelcomeInfo, ClientError> {
        loop {
            let msg = self.next_message().await?;
            let mut welcome = None;
            for frame in server_frames(&msg) {
                let frame = frame.map_err(|e| ClientError::Protocol(e.to_string()))?;
                if let ServerFrame::Welcome(w) = frame {
                    welcome = Some(WelcomeInfo {
                        user: w.user,
                        role: w.role,
                        name: w.name.into(),
                        geometry: Geometry::new(w.width, w.height, w.bpp, w.tile_size)
                            .map_err(|e| ClientError::Protocol(e.to_string()))?,
                        palette: w.palette.to_vec(),
                        cooldown_ms: w.cooldown_ms,
                        ready_at_ms: w.ready_at_ms,
                        server_time_ms: w.server_time_ms,
                    });
                } else {
                    let e = Event::from(&frame);
                    if let Event::Error { message, .. } | Event::Closing { message, .. } = &e
                        && welcome.is_none()
                    {
                        return Err(ClientError::Closed(message.clone()));
                    }
                    self.events.push_back(e);
                }
            }
            if let Some(w) = welcome {
                return Ok(w);
            }
        }
    }

    /// Reconnects after a dropped session and resumes the canvas: opens a new session, keeps
    /// `replica` current and re-subscribes the given tiles (all tiles when `tiles` is `None`)
    /// with the cursors the replica holds, so the server replays only what was missed (or sends
    /// whole tiles when its ring has moved on).
    pub async fn resume(
        addr: SocketAddr,
        token: &str,
        options: ConnectOptions,
        replica: Replica,
        tiles: Option<&[u32]>,
    ) -> Result<Self, ClientError> {
        let mut conn = Self::connect(addr, token, options).await?;
        conn.track(replica);
        match tiles {
            Some(tiles) => {
                let cursors: Vec<(u32, u64)> =
                    tiles.iter().map(|t| (*t, conn.replica.as_ref().map_or(u64::MAX, |r| r.cursor(*t)))).collect();
                conn.subscribe(&cursors).await?;
            }
            None => conn.subscribe_all().await?,
        }
        Ok(conn)
    }

    /// Keeps a canvas replica current from now on (start it from a snapshot or empty).
    pub fn track(&mut self, replica: Replica) {
        self.replica = Some(replica);
    }

    /// A fresh request id.
    pub fn next_req(&mut self) -> u32 {
        let r = self.next_req;
        self.next_req = self.next_req.wrapping_add(1).max(1);
        r
    }

    /// Sends frames as one transport message.
    pub async fn send_all(&mut self, frames: &[ClientFrame<'_>]) -> Result<(), ClientError> {
        self.encode_buf.clear();
        for f in frames {
            f.encode(&mut self.encode_buf).map_err(|e| ClientError::Protocol(e.to_string()))?;
        }
        let bytes = self.encode_buf.split().freeze();
        self.write(bytes).await
    }

    async fn write(&mut self, bytes: Bytes) -> Result<(), ClientError> {
        match &mut self.transport {
            Transport::Ws(ws) => {
                ws.send(Message::Binary(bytes)).await.map_err(|e| ClientError::WebSocket(e.to_string()))
            }
            Transport::Wt(wt) => wt.send.write_all(&bytes).await.map_err(|e| ClientError::WebSocket(e.to_string())),
        }
    }

    /// Sends one frame as one transport message.
    pub async fn send(&mut self, frame: &ClientFrame<'_>) -> Result<(), ClientError> {
        self.send_all(std::slice::from_ref(frame)).await
    }

    /// Sends raw bytes as one binary message (for tests of malformed input).
    pub async fn send_raw(&mut self, bytes: Vec<u8>) -> Result<(), ClientError> {
        self.write(bytes.into()).await
    }

    /// Sends a text message (the server refuses them).
    pub async fn send_text(&mut self, text: &str) -> Result<(), ClientError> {
        match &mut self.transport {
            Transport::Ws(ws) => {
                ws.send(Message::Text(text.into())).await.map_err(|e| ClientError::WebSocket(e.to_string()))
            }
            Transport::Wt(_) => Err(ClientError::Protocol("WebTransport has no text messages".into())),
        }
    }

    /// Paints; returns the request id.
    pub async fn paint(&mut self, x: u16, y: u16, colour: u8) -> Result<u32, ClientError> {
        let req = self.next_req();
        self.send(&ClientFrame::Paint(Paint { req, x, y, colour })).await?;
        Ok(req)
    }

    /// Subscribes to tiles with the given cursors.
    pub async fn subscribe(&mut self, tiles: &[(u32, u64)]) -> Result<(), ClientError> {
        for chunk in tiles.chunks(pixelparty_protocol::limits::MAX_TILES_PER_FRAME) {
            let cursors: Vec<TileCursor> = chunk.iter().map(|&(t, c)| TileCursor::new(t, c)).collect();
            self.send(&ClientFrame::Subscribe(Subscribe { tiles: &cursors })).await?;
        }
        Ok(())
    }

    /// Subscribes to every tile with the replica's cursors (or none held).
    pub async fn subscribe_all(&mut self) -> Result<(), ClientError> {
        let g = self.welcome.geometry;
        let tiles: Vec<(u32, u64)> =
            (0..g.tile_count()).map(|t| (t, self.replica.as_ref().map_or(u64::MAX, |r| r.cursor(t)))).collect();
        self.subscribe(&tiles).await
    }

    /// Unsubscribes tiles.
    pub async fn unsubscribe(&mut self, tiles: &[u32]) -> Result<(), ClientError> {
        let wire: Vec<WireTile> = tiles.iter().map(|t| WireTile::new(*t)).collect();
        self.send(&ClientFrame::Unsubscribe(Unsubscribe { tiles: &wire })).await
    }

    /// Joins a room; returns the request id.
    pub async fn join(&mut self, room: u32) -> Result<u32, ClientError> {
        let req = self.next_req();
        self.send(&ClientFrame::JoinRoom(RoomRequest { req, room })).await?;
        Ok(req)
    }

    /// Leaves a room; returns the request id.
    pub async fn leave(&mut self, room: u32) -> Result<u32, ClientError> {
        let req = self.next_req();
        self.send(&ClientFrame::LeaveRoom(RoomRequest { req, room })).await?;
        Ok(req)
    }

    /// Asks who is in a room; returns the request id.
    pub async fn who(&mut self, room: u32) -> Result<u32, ClientError> {
        let req = self.next_req();
        self.send(&ClientFrame::Who(RoomRequest { req, room })).await?;
        Ok(req)
    }

    /// Posts to a room; returns the request id.
    pub async fn say(&mut self, room: u32, text: &str) -> Result<u32, ClientError> {
        let req = self.next_req();
        self.send(&ClientFrame::SendRoom(SendRoom { req, room, text })).await?;
        Ok(req)
    }

    /// Sends a direct message; returns the request id.
    pub async fn dm(&mut self, to: u32, text: &str) -> Result<u32, ClientError> {
        let req = self.next_req();
        self.send(&ClientFrame::SendDirect(SendDirect { req, to, text })).await?;
        Ok(req)
    }

    /// Deletes a message; returns the request id.
    pub async fn delete(&mut self, kind: ConvKind, conv: u32, seq: u64) -> Result<u32, ClientError> {
        let req = self.next_req();
        self.send(&ClientFrame::Delete(Delete { req, kind, conv, seq })).await?;
        Ok(req)
    }

    /// Asks for a history page; returns the request id.
    pub async fn history(&mut self, kind: ConvKind, conv: u32, before: u64, limit: u16) -> Result<u32, ClientError> {
        let req = self.next_req();
        self.send(&ClientFrame::History(HistoryRequest { req, kind, conv, before, limit })).await?;
        Ok(req)
    }

    /// Sends a ping.
    pub async fn ping(&mut self, nonce: u64) -> Result<(), ClientError> {
        self.send(&ClientFrame::Ping(Ping { nonce })).await
    }

    /// The next binary message from the server (over WebTransport: every whole frame
    /// received so far).
    pub async fn next_message(&mut self) -> Result<Bytes, ClientError> {
        if let Some(why) = &self.closed {
            return Err(ClientError::Closed(why.clone()));
        }
        let result = match &mut self.transport {
            Transport::Ws(ws) => Self::next_ws(ws).await,
            Transport::Wt(wt) => Self::next_wt(&wt.conn, &mut wt.recv, &mut wt.buf).await,
        };
        if let Err(e) = &result {
            self.closed = Some(e.to_string().trim_start_matches("closed: ").to_owned());
        }
        result
    }

    async fn next_ws(ws: &mut WebSocketStream<TcpStream>) -> Result<Bytes, ClientError> {
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) => return Ok(b),
                Some(Ok(Message::Close(frame))) => {
                    let why = frame.map(|f| format!("{} {}", u16::from(f.code), f.reason)).unwrap_or_default();
                    return Err(ClientError::Closed(why));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(ClientError::WebSocket(e.to_string())),
                None => return Err(ClientError::Closed("connection ended".into())),
            }
        }
    }

    async fn next_wt(
        conn: &wtransport::Connection,
        recv: &mut wtransport::RecvStream,
        buf: &mut BytesMut,
    ) -> Result<Bytes, ClientError> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            // Hand out every whole frame at the front of the buffer.
            let mut whole = 0;
            while let Ok(pixelparty_protocol::Decoded::Frame { frame: _, len }) =
                pixelparty_protocol::codec::split_frame(&buf[whole..])
            {
                whole += len;
            }
            if whole > 0 {
                return Ok(buf.split_to(whole).freeze());
            }
            match recv.read(&mut chunk).await {
                Ok(Some(n)) => buf.extend_from_slice(&chunk[..n]),
                Ok(None) | Err(_) => {
                    let why = match conn.closed().await {
                        wtransport::error::ConnectionError::ApplicationClosed(c) => {
                            format!("{} {}", c.code().into_inner(), String::from_utf8_lossy(c.reason()))
                        }
                        other => other.to_string(),
                    };
                    return Err(ClientError::Closed(why));
                }
            }
        }
    }

    /// Reads one message and hands each frame to `visit` without allocating, keeping the
    /// replica current and re-subscribing tiles that need it. Returns the frame count.
    pub async fn recv_frames(&mut self, mut visit: impl FnMut(&ServerFrame<'_>)) -> Result<usize, ClientError> {
        let msg = self.next_message().await?;
        let mut count = 0;
        let mut resubscribe: Vec<u32> = Vec::new();
        for frame in server_frames(&msg) {
            let frame = frame.map_err(|e| ClientError::Protocol(e.to_string()))?;
            if let Some(r) = self.replica.as_mut() {
                match &frame {
                    ServerFrame::Pixels(p) => {
                        if let Applied::Gap(t) = r.apply_pixels(p) {
                            resubscribe.push(t);
                        }
                    }
                    ServerFrame::TileData(t) => r.apply_tile(t),
                    ServerFrame::Resync(s) => resubscribe.extend(s.tiles.iter().map(|t| t.get())),
                    _ => {}
                }
            }
            visit(&frame);
            count += 1;
        }
        if !resubscribe.is_empty() {
            resubscribe.sort_unstable();
            resubscribe.dedup();
            let tiles: Vec<(u32, u64)> =
                resubscribe.iter().map(|t| (*t, self.replica.as_ref().map_or(u64::MAX, |r| r.cursor(*t)))).collect();
            self.subscribe(&tiles).await?;
        }
        Ok(count)
    }

    /// The next event (decoded, owned).
    pub async fn recv(&mut self) -> Result<Event, ClientError> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(e);
            }
            let mut got = Vec::new();
            self.recv_frames(|f| {
                if !matches!(f, ServerFrame::Welcome(_)) {
                    got.push(Event::from(f))
                }
            })
            .await?;
            self.events.extend(got);
        }
    }

    /// Reads events until `f` picks one (or the timeout passes); other events are dropped.
    pub async fn wait_for<T>(&mut self, mut f: impl FnMut(&Event) -> Option<T>) -> Result<T, ClientError> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, async {
            loop {
                let e = self.recv().await?;
                if let Some(t) = f(&e) {
                    return Ok(t);
                }
            }
        })
        .await
        .map_err(|_| ClientError::Timeout)?
    }

    /// Reads events until `f` picks one, keeping every event seen (in order) in `seen`.
    pub async fn collect_until(
        &mut self,
        seen: &mut Vec<Event>,
        mut f: impl FnMut(&Event) -> bool,
    ) -> Result<(), ClientError> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, async {
            loop {
                let e = self.recv().await?;
                let done = f(&e);
                seen.push(e);
                if done {
                    return Ok(());
                }
            }
        })
        .await
        .map_err(|_| ClientError::Timeout)?
    }

    /// Closes the session.
    pub async fn close(mut self) -> Result<(), ClientError> {
        match &mut self.transport {
            Transport::Ws(ws) => {
                WebSocketStream::close(ws, None).await.map_err(|e| ClientError::WebSocket(e.to_string()))
            }
            Transport::Wt(wt) => {
                wt.conn.close(wtransport::VarInt::from_u32(1000), b"bye");
                // The session's own endpoint must live until the close is on the wire, or the
                // server only learns of it at its idle timeout.
                let _ = tokio::time::timeout(Duration::from_secs(1), wt.endpoint.wait_idle()).await;
                Ok(())
            }
        }
    }
}
