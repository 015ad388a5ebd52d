//! The session driver: one task per upgraded connection that pumps bytes between the raw
//! `TcpStream` and the engine. Reads go into one 64 KiB buffer per shard thread and through
//! the session's [`WsReader`]; the engine's output goes out as one binary message per batch of
//! frames; an idle peer is pinged, then closed.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pixelparty_engine::{LocalShard, UserCtx};
use pixelparty_protocol::CloseReason;
use pixelparty_protocol::limits::MAX_TRANSPORT_MESSAGE;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use crate::app::App;

use super::reader::{MAX_FRAME_HEADER, WsEvent, WsReader, close_payload, put_frame};

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
        WsEvent::Close(_) | WsEvent::Fail(..) => act.close = event.close_answer(),
    });
}

/// Sets a session up, then returns its driver: a plain function around an `async` block, so
/// that what only the set-up needs (the user, the early bytes) is not kept in the state
/// machine that an idle session holds for its whole life.
pub(super) fn run(
    shard: LocalShard,
    app: Arc<App>,
    stream: TcpStream,
    leftover: Option<Vec<u8>>,
    user: UserCtx,
    token_hash: Option<[u8; 32]>,
    visitor: Option<crate::app::VisitorSlot>,
) -> impl Future<Output = ()> {
    // Counted for its lifetime (the HTTP connection that carried the upgrade stopped counting
    // when it ended), with its user counted online (or its visitor slot held).
    let slot = stream.peer_addr().ok().map(|peer| app.hold(peer.ip()));
    let attendance = app.attend(user.id, visitor);
    let _ = stream.set_nodelay(true);
    let (addr, user_id) = (user.addr, user.id);
    let conn = shard.connect(user);
    {
        let (shard, app) = (shard.clone(), app.clone());
        tokio::task::spawn_local(async move { app.recheck(&shard, conn, user_id, token_hash, addr).await });
    }
    let mut reader = WsReader::default();
    let mut act = Actions::default();
    // Bytes the client sent right after the handshake (copied out of hyper's read buffer so
    // that buffer is freed).
    if let Some(mut early) = leftover {
        handle_bytes(&mut reader, &shard, conn, &mut early, &mut act);
    }
    let mut stream = stream;
    async move {
        let _slot = (slot, attendance);
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
    let mut buf = Vec::with_capacity(len + MAX_FRAME_HEADER);
    put_frame(&mut buf, opcode, payload);
    let limit = Duration::from_millis(app.config.server.write_timeout_ms);
    write_within(stream, &buf, limit).await.map_err(|e| match e {
        WriteError::TimedOut => {
            app.metrics.write_timeouts.inc();
            std::io::ErrorKind::TimedOut.into()
        }
        WriteError::Io(e) => e,
    })
}

/// Why [`write_within`] did not write everything.
#[derive(Debug)]
pub enum WriteError {
    /// The peer did not take the bytes within the limit.
    TimedOut,
    /// The socket failed.
    Io(std::io::Error),
}

/// Writes `buf` (whole frames) to the socket, failing when the peer takes longer than `limit`
/// to accept it. Usually the socket takes it all at once, without arming a timer.
pub async fn write_within(stream: &mut TcpStream, buf: &[u8], limit: Duration) -> Result<(), WriteError> {
    let done = match stream.try_write(buf) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
        Err(e) => return Err(WriteError::Io(e)),
    };
    if done == buf.len() {
        return Ok(());
    }
    match tokio::time::timeout(limit, stream.write_all(&buf[done..])).await {
        Ok(r) => r.map_err(WriteError::Io),
        Err(_) => Err(WriteError::TimedOut),
    }
}
