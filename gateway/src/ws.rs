//! WebSocket sessions: the upgrade (origin check, authentication, bans) and the session
//! driver that pumps bytes between the socket and the engine.
//!
//! After the upgrade the session owns the raw `TcpStream` (hyper's connection is gone). Frames
//! are parsed with tungstenite's frame-header codec by a sans-IO [`WsReader`]; reads go into
//! one 64 KiB buffer per shard thread, so an idle session holds no read buffer at all (only a
//! partial frame is ever copied into the session). Output is one binary message per batch of
//! engine frames.

use std::cell::RefCell;
use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use pixelparty_engine::{LocalShard, UserCtx};
use pixelparty_protocol::CloseReason;
use pixelparty_protocol::limits::MAX_TRANSPORT_MESSAGE;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use crate::app::App;
use crate::http::error::ApiError;
use crate::http::{Ctx, Resp, empty};

/// WebSocket close codes used besides the protocol's [`CloseReason`] codes.
pub mod close_code {
    /// Protocol error (bad framing).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// Text messages are not accepted.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// A message over the size limit.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
}

/// Largest control frame payload (RFC 6455).
const MAX_CONTROL: u64 = 125;

/// What the reader found in the bytes it was fed.
#[derive(Debug, PartialEq, Eq)]
pub enum WsEvent<'a> {
    /// A whole binary message.
    Message(&'a [u8]),
    /// A ping with its payload (answer with a pong).
    Ping(&'a [u8]),
    /// A pong.
    Pong,
    /// The peer closes (with its code, if any).
    Close(Option<u16>),
    /// The peer broke the rules: close with this code and reason.
    Fail(u16, &'static str),
}

/// Sans-IO parser of client frames: unmasks, reassembles fragmented messages, enforces the
/// message size limit before buffering, refuses text and unmasked frames.
#[derive(Debug, Default)]
pub struct WsReader {
    /// Bytes of a frame not yet complete (empty while idle).
    pending: Vec<u8>,
    /// A fragmented message being reassembled (empty while idle).
    message: Vec<u8>,
    in_message: bool,
    failed: bool,
}

enum Step {
    Need,
    Consumed(usize),
}

impl WsReader {
    /// Feeds received bytes (unmasked in place) and reports events in order. After a `Fail`
    /// or `Close`, nothing more is reported.
    pub fn feed(&mut self, data: &mut [u8], on: &mut dyn FnMut(WsEvent<'_>)) {
        if self.failed {
            return;
        }
        if self.pending.is_empty() {
            let used = self.parse(data, on);
            if !self.failed && used < data.len() {
                self.pending.extend_from_slice(&data[used..]);
            }
        } else {
            let mut buf = std::mem::take(&mut self.pending);
            buf.extend_from_slice(data);
            let used = self.parse(&mut buf, on);
            buf.drain(..used);
            if !self.failed {
                self.pending = buf;
            }
        }
        if self.pending.is_empty() && self.pending.capacity() > 0 {
            self.pending = Vec::new(); // Idle sessions hold no buffer.
        }
    }

    fn parse(&mut self, buf: &mut [u8], on: &mut dyn FnMut(WsEvent<'_>)) -> usize {
        let mut pos = 0;
        while !self.failed {
            match self.frame(&mut buf[pos..], on) {
                Step::Need => break,
                Step::Consumed(n) => pos += n,
            }
        }
        pos
    }

    fn fail(&mut self, on: &mut dyn FnMut(WsEvent<'_>), code: u16, why: &'static str) -> Step {
        self.failed = true;
        on(WsEvent::Fail(code, why));
        Step::Need
    }

    fn frame(&mut self, buf: &mut [u8], on: &mut dyn FnMut(WsEvent<'_>)) -> Step {
        let mut cursor = Cursor::new(&*buf);
        let (header, len) = match FrameHeader::parse(&mut cursor) {
            Ok(Some(h)) => h,
            Ok(None) => return Step::Need,
            Err(_) => return self.fail(on, close_code::PROTOCOL_ERROR, "bad frame header"),
        };
        let head = cursor.position() as usize;
        let Some(mask) = header.mask else {
            return self.fail(on, close_code::PROTOCOL_ERROR, "client frames must be masked");
        };
        if header.rsv1 || header.rsv2 || header.rsv3 {
            return self.fail(on, close_code::PROTOCOL_ERROR, "no extensions were negotiated");
        }
        let control = matches!(header.opcode, OpCode::Control(_));
        if control && (len > MAX_CONTROL || !header.is_final) {
            return self.fail(on, close_code::PROTOCOL_ERROR, "bad control frame");
        }
        let limit = (MAX_TRANSPORT_MESSAGE - self.message.len()) as u64;
        if !control && len > limit {
            return self.fail(on, close_code::MESSAGE_TOO_BIG, "message too big");
        }
        let total = head + len as usize;
        if buf.len() < total {
            return Step::Need;
        }
        let payload = &mut buf[head..total];
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i & 3];
        }
        match header.opcode {
            OpCode::Data(Data::Binary) if !self.in_message => {
                if header.is_final {
                    on(WsEvent::Message(payload));
                } else {
                    self.in_message = true;
                    self.message.extend_from_slice(payload);
                }
            }
            OpCode::Data(Data::Continue) if self.in_message => {
                self.message.extend_from_slice(payload);
                if header.is_final {
                    self.in_message = false;
                    let message = std::mem::take(&mut self.message);
                    on(WsEvent::Message(&message));
                }
            }
            OpCode::Data(Data::Text) => return self.fail(on, close_code::UNSUPPORTED_DATA, "binary messages only"),
            OpCode::Data(_) => return self.fail(on, close_code::PROTOCOL_ERROR, "unexpected data frame"),
            OpCode::Control(Control::Ping) => on(WsEvent::Ping(payload)),
            OpCode::Control(Control::Pong) => on(WsEvent::Pong),
            OpCode::Control(Control::Close) => {
                let code = (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                self.failed = true;
                on(WsEvent::Close(code));
            }
            OpCode::Control(_) => return self.fail(on, close_code::PROTOCOL_ERROR, "unknown control frame"),
        }
        Step::Consumed(total)
    }
}

/// Appends a server frame (unmasked) to `out`.
fn put_frame(out: &mut Vec<u8>, opcode: OpCode, payload: &[&[u8]]) {
    let len: usize = payload.iter().map(|p| p.len()).sum();
    let header = FrameHeader { is_final: true, rsv1: false, rsv2: false, rsv3: false, opcode, mask: None };
    // Writing into a Vec cannot fail.
    let _ = header.format(len as u64, out);
    for p in payload {
        out.extend_from_slice(p);
    }
}

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(&reason.as_bytes()[..reason.len().min(120)]);
    p
}

// ---- upgrade ------------------------------------------------------------------------------

fn header_is(req: &Request<Incoming>, name: header::HeaderName, token: &str) -> bool {
    req.headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// Whether the request's `Origin` may open a WebSocket.
pub fn origin_allowed(req: &Request<Incoming>, allowed: &[String]) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true; // Not a browser: no cross-site hijacking to fear.
    };
    if !allowed.is_empty() {
        return allowed.iter().any(|a| a.eq_ignore_ascii_case(origin));
    }
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// `GET /ws`: checks the upgrade, the origin, the session and bans, answers 101 and hands the
/// connection to the engine.
pub async fn upgrade(mut req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let refused = |e: ApiError| {
        ctx.app.metrics.ws_refused.inc();
        e
    };
    let key = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned();
    let is_upgrade = header_is(&req, header::CONNECTION, "upgrade") && header_is(&req, header::UPGRADE, "websocket");
    let Some(key) = key.filter(|_| is_upgrade) else {
        return Err(refused(ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "upgrade_required",
            "this is a WebSocket endpoint",
        )));
    };
    if req.headers().get(header::SEC_WEBSOCKET_VERSION).and_then(|v| v.to_str().ok()) != Some("13") {
        return Err(refused(ApiError::invalid("Sec-WebSocket-Version must be 13")));
    }
    if !origin_allowed(&req, &ctx.app.config.server.allowed_origins) {
        return Err(refused(ApiError::forbidden("origin not allowed")));
    }
    let user = ctx.auth(&req).await.map_err(refused)?;
    if let Some(ban) = ctx.app.bans.find(ctx.client_ip(&req), pixelparty_engine::now_ms()) {
        return Err(refused(ApiError::banned(ban.ban.reason, ban.ban.expires_ms)));
    }
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let user = user.session_ctx(ctx.client_ip(&req));
    let (shard, app) = (ctx.shard.clone(), ctx.app.clone());
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::task::spawn_local(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => return tracing::debug!(error = %e, "upgrade failed"),
        };
        match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => {
                app.metrics.ws_opened.inc();
                // A task of its own, so the session's memory is only its own state machine.
                let leftover = (!parts.read_buf.is_empty()).then(|| parts.read_buf.to_vec());
                tokio::task::spawn_local(run(shard, app, parts.io.into_inner(), leftover, user));
            }
            Err(_) => tracing::error!("upgraded connection is not a TCP stream"),
        }
    });
    let mut r = empty(StatusCode::SWITCHING_PROTOCOLS);
    let h = r.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    Ok(r)
}

// ---- the session driver -------------------------------------------------------------------

thread_local! {
    /// One read buffer per shard thread, shared by all its sessions.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; 64 * 1024]);
}

/// What the read side asks the driver to do.
#[derive(Default)]
struct Actions {
    pongs: Vec<Vec<u8>>,
    close: Option<(u16, &'static str)>,
    eof: bool,
}

fn handle_bytes(
    reader: &mut WsReader,
    shard: &LocalShard,
    conn: pixelparty_engine::ConnId,
    data: &mut [u8],
    act: &mut Actions,
) {
    reader.feed(data, &mut |event| match event {
        WsEvent::Message(m) => shard.receive_message(conn, m),
        WsEvent::Ping(p) => act.pongs.push(p.to_vec()),
        WsEvent::Pong => {}
        WsEvent::Close(_) => act.close = Some((1000, "bye")),
        WsEvent::Fail(code, why) => act.close = Some((code, why)),
    });
}

/// Sets a session up, then returns its driver: a plain function around an `async` block, so
/// that what only the set-up needs (the user, the early bytes) is not kept in the state
/// machine that an idle session holds for its whole life.
fn run(
    shard: LocalShard,
    app: Arc<App>,
    stream: TcpStream,
    leftover: Option<Vec<u8>>,
    user: UserCtx,
) -> impl Future<Output = ()> {
    // Counted for its lifetime (the HTTP connection that carried the upgrade stopped counting
    // when it ended).
    let slot = stream.peer_addr().ok().map(|peer| app.hold(peer.ip()));
    let _ = stream.set_nodelay(true);
    let conn = shard.connect(user);
    let mut reader = WsReader::default();
    let mut act = Actions::default();
    // Bytes the client sent right after the handshake (copied out of hyper's read buffer so
    // that buffer is freed).
    if let Some(mut early) = leftover {
        handle_bytes(&mut reader, &shard, conn, &mut early, &mut act);
    }
    let mut stream = stream;
    async move {
        let _slot = slot;
        let mut out: Vec<Bytes> = Vec::new();
        let mut last_rx = tokio::time::Instant::now();
        let mut pinged = false;
        loop {
            if let Some((code, why)) = act.close.take() {
                let _ = write(&mut stream, &app, OpCode::Control(Control::Close), &[&close_payload(code, why)]).await;
                break;
            }
            for pong in std::mem::take(&mut act.pongs) {
                if write(&mut stream, &app, OpCode::Control(Control::Pong), &[&pong]).await.is_err() {
                    act.eof = true;
                }
            }
            if act.eof {
                break;
            }
            // Read from the config each turn rather than kept: an idle session's state machine
            // holds as little as possible.
            let deadline = {
                let idle = Duration::from_millis(app.config.server.idle_timeout_ms);
                last_rx + if pinged { idle } else { idle / 2 }
            };
            tokio::select! {
                ready = stream.readable() => {
                    if ready.is_err() {
                        break;
                    }
                    let read = SCRATCH.with(|s| {
                        let mut s = s.borrow_mut();
                        match stream.try_read(&mut s) {
                            Ok(0) => Err(()),
                            Ok(n) => {
                                handle_bytes(&mut reader, &shard, conn, &mut s[..n], &mut act);
                                Ok(true)
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(false),
                            Err(_) => Err(()),
                        }
                    });
                    match read {
                        Ok(true) => {
                            last_rx = tokio::time::Instant::now();
                            pinged = false;
                        }
                        Ok(false) => {}
                        Err(()) => act.eof = true,
                    }
                }
                close = shard.next_output(conn, MAX_TRANSPORT_MESSAGE - 16, &mut out) => {
                    if !out.is_empty() {
                        let parts: Vec<&[u8]> = out.iter().map(|b| b.as_ref()).collect();
                        let sent = write(&mut stream, &app, OpCode::Data(Data::Binary), &parts).await;
                        out.clear();
                        if sent.is_err() {
                            break;
                        }
                    }
                    if let Some(c) = close {
                        let _ = write(&mut stream, &app, OpCode::Control(Control::Close), &[&close_payload(c.reason.close_code(), c.reason.name())]).await;
                        break;
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    if pinged {
                        shard.close(conn, CloseReason::IdleTimeout, "nothing received");
                    } else {
                        pinged = true;
                        if write(&mut stream, &app, OpCode::Control(Control::Ping), &[b"pp"]).await.is_err() {
                            break;
                        }
                    }
                }
            }
        }
        let _ = stream.shutdown().await;
        shard.disconnect(conn);
    }
}

/// Writes one frame, failing when the peer takes longer than `server.write_timeout_ms` to
/// accept it (a client that stops reading fills the socket buffer; its session ends instead of
/// hanging, and the timeout is counted).
async fn write(stream: &mut TcpStream, app: &App, opcode: OpCode, payload: &[&[u8]]) -> std::io::Result<()> {
    let len: usize = payload.iter().map(|p| p.len()).sum();
    let mut buf = Vec::with_capacity(len + 14);
    put_frame(&mut buf, opcode, payload);
    // Usually the socket takes it all at once, without arming a timer.
    let done = match stream.try_write(&buf) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
        Err(e) => return Err(e),
    };
    if done == buf.len() {
        return Ok(());
    }
    let limit = Duration::from_millis(app.config.server.write_timeout_ms);
    match tokio::time::timeout(limit, stream.write_all(&buf[done..])).await {
        Ok(r) => r,
        Err(_) => {
            app.metrics.write_timeouts.inc();
            Err(std::io::ErrorKind::TimedOut.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut f = vec![(if fin { 0x80 } else { 0 }) | opcode];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n < 65536 => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    fn events(reader: &mut WsReader, bytes: &[u8]) -> Vec<String> {
        let mut got = Vec::new();
        reader.feed(&mut bytes.to_vec(), &mut |e| got.push(format!("{e:?}")));
        got
    }

    #[test]
    fn whole_split_and_fragmented_messages() {
        let mut r = WsReader::default();
        let f = client_frame(0x2, true, b"hello");
        assert_eq!(events(&mut r, &f), vec!["Message([104, 101, 108, 108, 111])"]);
        // Byte by byte.
        let mut got = Vec::new();
        for b in &f {
            got.extend(events(&mut r, &[*b]));
        }
        assert_eq!(got, vec!["Message([104, 101, 108, 108, 111])"]);
        assert_eq!(r.pending.capacity(), 0, "no buffer held between messages");
        // Fragmented, with a ping in between.
        let mut bytes = client_frame(0x2, false, b"he");
        bytes.extend(client_frame(0x9, true, b"p"));
        bytes.extend(client_frame(0x0, true, b"llo"));
        assert_eq!(events(&mut r, &bytes), vec!["Ping([112])", "Message([104, 101, 108, 108, 111])"]);
    }

    #[test]
    fn refusals() {
        let mut r = WsReader::default();
        assert_eq!(events(&mut r, &client_frame(0x1, true, b"text")), vec!["Fail(1003, \"binary messages only\")"]);
        assert!(events(&mut r, &client_frame(0x2, true, b"x")).is_empty(), "nothing after a failure");
        let mut r = WsReader::default();
        assert_eq!(events(&mut r, &[0x82, 0x01, b'x']), vec!["Fail(1002, \"client frames must be masked\")"]);
        // Oversize is refused from the header, before the payload arrives.
        let mut r = WsReader::default();
        let mut header = vec![0x82, 0x80 | 127];
        header.extend_from_slice(&((MAX_TRANSPORT_MESSAGE as u64) + 1).to_be_bytes());
        header.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(events(&mut r, &header), vec!["Fail(1009, \"message too big\")"]);
        let mut r = WsReader::default();
        assert_eq!(events(&mut r, &client_frame(0x0, true, b"x")), vec!["Fail(1002, \"unexpected data frame\")"]);
        let mut r = WsReader::default();
        let mut close = client_frame(0x8, true, &1000u16.to_be_bytes());
        close.extend(client_frame(0x2, true, b"late"));
        assert_eq!(events(&mut r, &close), vec!["Close(Some(1000))"]);
    }
}
