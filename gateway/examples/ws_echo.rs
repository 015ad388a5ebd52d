//! A WebSocket echo server for the Autobahn test cases (`gateway/autobahn/run.sh`), built on
//! exactly the gateway's WebSocket code: the handshake checks and 101 answer of
//! [`ws::upgrade`], the [`WsReader`] with its limits and refusals, the frame writers of
//! [`ws::reader`] and the deadline-bound [`write_within`] of [`ws::session`]. Only what the
//! real session does with a message differs: here it is sent back as it came (binary), where
//! the session hands it to the engine. No authentication, no Origin check, no engine.
//!
//! Usage: `ws_echo [ADDR]` (default `127.0.0.1:0`); prints `listening on ws://ADDR` once bound.
//! A test tool: not for production.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use pixelparty_gateway::config::ServerSection;
use pixelparty_gateway::http::{Resp, empty};
use pixelparty_gateway::ws::reader::put_frame;
use pixelparty_gateway::ws::session::write_within;
use pixelparty_gateway::ws::{self, WsEvent, WsReader};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

/// Read buffer, as the session's per-shard scratch.
const READ_BUF: usize = 64 * 1024;

fn main() -> anyhow::Result<()> {
    let addr: SocketAddr = std::env::args().nth(1).as_deref().unwrap_or("127.0.0.1:0").parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, serve(addr))
}

async fn serve(addr: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on ws://{}", listener.local_addr()?)?;
    stdout.flush()?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::task::spawn_local(async move {
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(stream), service_fn(upgrade))
                .with_upgrades();
            let _ = conn.await;
        });
    }
}

/// The gateway's handshake, without session, Origin or ban checks.
async fn upgrade(mut req: Request<Incoming>) -> Result<Resp, std::convert::Infallible> {
    let accept = match ws::upgrade::handshake_accept(&req) {
        Ok(accept) => accept,
        Err(e) => return Ok(empty(e.status)),
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::task::spawn_local(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        if let Ok(parts) = upgraded.downcast::<TokioIo<TcpStream>>() {
            let leftover = (!parts.read_buf.is_empty()).then(|| parts.read_buf.to_vec());
            echo(parts.io.into_inner(), leftover).await;
        }
    });
    Ok(ws::upgrade::switching_protocols(&accept))
}

/// Feeds bytes to the reader and appends the answers (echoes, pongs, a final close) to `out`
/// in the order of the events. Returns whether the session ends.
fn answer(reader: &mut WsReader, data: &mut [u8], out: &mut Vec<u8>) -> bool {
    let mut done = false;
    reader.feed(data, &mut |event| match event {
        WsEvent::Message(m) => put_frame(out, OpCode::Data(Data::Binary), &[m]),
        WsEvent::Ping(p) => put_frame(out, OpCode::Control(Control::Pong), &[p]),
        WsEvent::Pong => {}
        WsEvent::Close(_) | WsEvent::Fail(..) => {
            if let Some((code, why)) = event.close_answer() {
                put_frame(out, OpCode::Control(Control::Close), &[&ws::reader::close_payload(code, why)]);
            }
            done = true;
        }
    });
    done
}

async fn echo(mut stream: TcpStream, leftover: Option<Vec<u8>>) {
    let write_limit = Duration::from_millis(ServerSection::default().write_timeout_ms);
    let mut reader = WsReader::default();
    let mut out = Vec::new();
    let mut done = leftover.is_some_and(|mut early| answer(&mut reader, &mut early, &mut out));
    let mut buf = vec![0u8; READ_BUF];
    loop {
        if !out.is_empty() {
            if write_within(&mut stream, &out, write_limit).await.is_err() {
                break;
            }
            out.clear();
        }
        if done {
            break;
        }
        if stream.readable().await.is_err() {
            break;
        }
        match stream.try_read(&mut buf) {
            Ok(0) => break,
            Ok(n) => done = answer(&mut reader, &mut buf[..n], &mut out),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
    }
    let _ = stream.shutdown().await;
}
