//! Chat clients for every target the benchmarks compare: pixelparty (binary protocol),
//! socket.io 4 (Engine.IO v4 text framing over WebSocket) and a plain Node `ws` server (JSON
//! text). Same scenario, each in its own dialect (see `bench/peers/README.md`).

use std::net::{IpAddr, SocketAddr};

use futures_util::{SinkExt, StreamExt};
use pixelparty_protocol::ServerFrame;
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::client::{ClientError, ConnectOptions, Connection};

/// Which server is under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// pixelparty's binary protocol.
    Pixelparty,
    /// A socket.io 4 server (`bench/peers/socketio-server.mjs`).
    Socketio,
    /// A Node `ws` server (`bench/peers/ws-server.mjs`).
    Ws,
    /// The fan-out floor (`pixelparty-bench floor`, `paint` only): see [`crate::floor`].
    Floor,
}

impl Target {
    /// Name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pixelparty => "pixelparty",
            Self::Socketio => "socketio",
            Self::Ws => "ws",
            Self::Floor => "floor",
        }
    }
}

/// A received chat message: the room key and the body.
#[derive(Debug)]
pub struct ChatMsg<'a> {
    /// Room (pixelparty: room id; peers: the index in the room name).
    pub room: u32,
    /// Body as sent.
    pub body: &'a str,
    /// pixelparty's per-room sequence (0 for peers, which have none).
    pub seq: u64,
}

/// One chat connection in some dialect.
#[derive(Debug)]
pub enum ChatClient {
    /// pixelparty.
    Pixelparty(Box<Connection>),
    /// socket.io.
    Socketio(WebSocketStream<TcpStream>),
    /// Node ws.
    Ws(WebSocketStream<TcpStream>),
}

async fn raw_ws(
    addr: SocketAddr,
    path: &str,
    source: Option<IpAddr>,
) -> Result<WebSocketStream<TcpStream>, ClientError> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024).write_buffer_size(0);
    let url = format!("ws://{addr}{path}");
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
        .await
        .map_err(|e| ClientError::WebSocket(e.to_string()))?;
    Ok(ws)
}

fn ws_err(e: impl std::fmt::Display) -> ClientError {
    ClientError::WebSocket(e.to_string())
}

async fn next_text(ws: &mut WebSocketStream<TcpStream>) -> Result<String, ClientError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.to_string()),
            Some(Ok(Message::Close(_))) | None => return Err(ClientError::Closed("peer closed".into())),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(ws_err(e)),
        }
    }
}

impl ChatClient {
    /// Connects and completes the dialect's handshake.
    pub async fn connect(
        target: Target,
        addr: SocketAddr,
        token: &str,
        options: ConnectOptions,
    ) -> Result<Self, ClientError> {
        let source = options.source_ip;
        match target {
            Target::Pixelparty | Target::Floor => {
                Ok(Self::Pixelparty(Box::new(Connection::connect(addr, token, options).await?)))
            }
            Target::Ws => Ok(Self::Ws(raw_ws(addr, "/", source).await?)),
            Target::Socketio => {
                let mut ws = raw_ws(addr, "/socket.io/?EIO=4&transport=websocket", source).await?;
                let open = next_text(&mut ws).await?;
                if !open.starts_with('0') {
                    return Err(ClientError::Protocol(format!("engine.io open expected, got {open}")));
                }
                ws.send(Message::Text("40".into())).await.map_err(ws_err)?;
                loop {
                    let t = next_text(&mut ws).await?;
                    if t.starts_with("40") {
                        break;
                    }
                    if t == "2" {
                        ws.send(Message::Text("3".into())).await.map_err(ws_err)?;
                    }
                }
                Ok(Self::Socketio(ws))
            }
        }
    }

    /// Joins a room and waits until the server confirms.
    pub async fn join(&mut self, room: u32) -> Result<(), ClientError> {
        match self {
            Self::Pixelparty(c) => {
                let req = c.join(room).await?;
                c.wait_for(|e| match e {
                    crate::client::Event::Ack { req: r, .. } if *r == req => Some(Ok(())),
                    crate::client::Event::Error { req: r, code, .. } if *r == req => {
                        Some(Err(ClientError::Protocol(format!("join refused: {code:?}"))))
                    }
                    _ => None,
                })
                .await?
            }
            Self::Ws(ws) => {
                ws.send(Message::Text(json!({ "t": "join", "room": format!("r{room}") }).to_string().into()))
                    .await
                    .map_err(ws_err)?;
                loop {
                    let t = next_text(ws).await?;
                    if t.contains("\"joined\"") {
                        return Ok(());
                    }
                }
            }
            Self::Socketio(ws) => {
                ws.send(Message::Text(format!("42[\"join\",\"r{room}\"]").into())).await.map_err(ws_err)?;
                loop {
                    let t = next_text(ws).await?;
                    if t == "2" {
                        ws.send(Message::Text("3".into())).await.map_err(ws_err)?;
                    } else if t.starts_with("42[\"joined\"") {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Closes the connection cleanly, so the server lets go of it at once rather than at its
    /// idle timeout (what a dropped WebTransport session would cost before the next scenario).
    pub async fn close(self) {
        match self {
            Self::Pixelparty(c) => {
                let _ = c.close().await;
            }
            Self::Ws(mut ws) | Self::Socketio(mut ws) => {
                let _ = ws.close(None).await;
            }
        }
    }

    /// Sends a message to a room (no wait for an answer).
    pub async fn send(&mut self, room: u32, body: &str) -> Result<(), ClientError> {
        match self {
            Self::Pixelparty(c) => c.say(room, body).await.map(|_| ()),
            Self::Ws(ws) => {
                let msg = json!({ "t": "msg", "room": format!("r{room}"), "body": body });
                ws.send(Message::Text(msg.to_string().into())).await.map_err(ws_err)
            }
            Self::Socketio(ws) => {
                let msg = json!(["msg", { "room": format!("r{room}"), "body": body }]);
                ws.send(Message::Text(format!("42{msg}").into())).await.map_err(ws_err)
            }
        }
    }

    /// Receives the next transport message and hands every chat message in it to `on`.
    /// Returns how many chat messages were seen.
    pub async fn recv(&mut self, mut on: impl FnMut(ChatMsg<'_>)) -> Result<usize, ClientError> {
        match self {
            Self::Pixelparty(c) => {
                let mut n = 0;
                c.recv_frames(|f| {
                    if let ServerFrame::RoomMessage(m) = f {
                        n += 1;
                        on(ChatMsg { room: m.room, body: m.text, seq: m.seq });
                    }
                })
                .await?;
                Ok(n)
            }
            Self::Ws(ws) => {
                let t = next_text(ws).await?;
                let v: Value = serde_json::from_str(&t).map_err(|e| ClientError::Protocol(e.to_string()))?;
                if v["t"] != "msg" {
                    return Ok(0);
                }
                let room = v["room"].as_str().and_then(|r| r.trim_start_matches('r').parse().ok()).unwrap_or(0);
                on(ChatMsg { room, body: v["body"].as_str().unwrap_or(""), seq: 0 });
                Ok(1)
            }
            Self::Socketio(ws) => {
                let t = next_text(ws).await?;
                if t == "2" {
                    ws.send(Message::Text("3".into())).await.map_err(ws_err)?;
                    return Ok(0);
                }
                let Some(payload) = t.strip_prefix("42") else { return Ok(0) };
                let v: Value = serde_json::from_str(payload).map_err(|e| ClientError::Protocol(e.to_string()))?;
                if v[0] != "msg" {
                    return Ok(0);
                }
                let room = v[1]["room"].as_str().and_then(|r| r.trim_start_matches('r').parse().ok()).unwrap_or(0);
                on(ChatMsg { room, body: v[1]["body"].as_str().unwrap_or(""), seq: 0 });
                Ok(1)
            }
        }
    }
}
