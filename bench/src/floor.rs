//! The fan-out floor: what any server must at least spend to tell N subscribers of a tile about
//! a paint, measured with the same load client as pixelparty (`paint --target floor`).
//!
//! It speaks just enough of the protocol for the `paint` scenario (`Hello` → `Welcome`,
//! `Subscribe` → `TileData`, `Paint` → `Ack` at once, `GET /canvas`, `GET /canvas/snapshot`),
//! and per tick does only what the floor does: the paints of the tick become one `Pixels` frame
//! per tile, all of them one WebSocket message encoded once, and that same byte string is
//! written to every subscriber's socket with one non-blocking `write` each, on one thread.
//! No auth, no store, no cooldown, no per-connection task or queue beyond the bytes a socket
//! did not take (kept, bounded, and retried first next tick). Whatever pixelparty spends beyond
//! this is overhead to remove (issue 15); `bench/scripts/floor.sh` runs both in one go.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use pixelparty_protocol::canvas::set_pixel;
use pixelparty_protocol::server::{Ack, Pixels, TileData, Welcome};
use pixelparty_protocol::{ClientFrame, Decoded, Geometry, PixelUpdate, PixelsHead, Role, ServerFrame};

/// Options of the floor server.
#[derive(Debug, Clone, clap::Args)]
pub struct FloorArgs {
    /// Canvas width.
    #[arg(long, default_value_t = 1000)]
    pub width: u32,
    /// Canvas height.
    #[arg(long, default_value_t = 1000)]
    pub height: u32,
    /// Tile edge.
    #[arg(long, default_value_t = 256)]
    pub tile: u16,
    /// Tick in milliseconds (pixelparty's default is 5).
    #[arg(long, default_value_t = 5)]
    pub tick_ms: u64,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub seconds: u64,
}

/// Bytes a subscriber's socket may leave untaken before it is dropped (a slow reader).
const MAX_BACKLOG: usize = 1 << 20;
/// Bytes of an HTTP request head.
const MAX_HEAD: usize = 8 * 1024;
/// Bytes of client frames buffered per connection.
const MAX_INBOUND: usize = 64 * 1024;

const PALETTE: [[u8; 3]; 16] = [
    [255, 255, 255],
    [228, 228, 228],
    [136, 136, 136],
    [34, 34, 34],
    [255, 167, 209],
    [229, 0, 0],
    [229, 149, 0],
    [160, 106, 66],
    [229, 217, 0],
    [148, 224, 68],
    [2, 190, 1],
    [0, 211, 221],
    [0, 131, 199],
    [0, 0, 234],
    [207, 110, 228],
    [130, 0, 128],
];

/// The canvas the floor keeps (for `TileData` and the snapshot the scenario compares with).
struct Canvas {
    g: Geometry,
    tiles: Vec<Vec<u8>>,
    seqs: Vec<u64>,
    seq: u64,
}

impl Canvas {
    fn snapshot(&self) -> Vec<u8> {
        let n = self.tiles.len();
        let mut b = Vec::with_capacity(40 + 8 * n + n * self.g.tile_bytes());
        b.extend_from_slice(b"PXSN");
        b.extend_from_slice(&1u16.to_le_bytes());
        b.push(self.g.bpp());
        b.push(0);
        b.extend_from_slice(&self.g.tile_size().to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&self.g.width().to_le_bytes());
        b.extend_from_slice(&self.g.height().to_le_bytes());
        b.extend_from_slice(&(n as u32).to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&self.seq.to_le_bytes());
        for s in &self.seqs {
            b.extend_from_slice(&s.to_le_bytes());
        }
        for t in &self.tiles {
            b.extend_from_slice(t);
        }
        b
    }
}

/// A WebSocket binary message (server to client: unmasked) around `payload`.
fn ws_message(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x82);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= 0xffff => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

fn frame(f: &ServerFrame<'_>) -> Vec<u8> {
    let mut b = BytesMut::new();
    // Every frame here is within the protocol's limits.
    let _ = f.encode(&mut b);
    b.to_vec()
}

/// One client connection after its upgrade.
struct Client {
    stream: TcpStream,
    inbound: Vec<u8>,
    /// Bytes written but not yet taken by the socket (sent first next time).
    backlog: Vec<u8>,
    subscribed: bool,
    /// Still read: until it subscribes (a subscriber then only listens, as the `paint`
    /// scenario's do; a painter never subscribes and is read all along). Reading 10,000
    /// silent sockets every turn would cost the floor what no server pays with epoll.
    reading: bool,
}

/// Parses the client's WebSocket frames in `buf` (masked, unfragmented binary); returns the
/// payloads and how many bytes they used, or `Err` for something the floor does not speak.
fn ws_frames(buf: &[u8]) -> Result<(Vec<Vec<u8>>, usize), ()> {
    let mut at = 0;
    let mut out = Vec::new();
    while buf.len() >= at + 2 {
        let (b0, b1) = (buf[at], buf[at + 1]);
        if b1 & 0x80 == 0 {
            return Err(());
        }
        let (len, head) = match b1 & 0x7f {
            126 if buf.len() >= at + 4 => (usize::from(u16::from_be_bytes([buf[at + 2], buf[at + 3]])), 4),
            127 if buf.len() >= at + 10 => {
                let mut l = [0u8; 8];
                l.copy_from_slice(&buf[at + 2..at + 10]);
                (usize::try_from(u64::from_be_bytes(l)).map_err(|_| ())?, 10)
            }
            126 | 127 => break,
            n => (usize::from(n), 2),
        };
        if len > MAX_INBOUND {
            return Err(());
        }
        if buf.len() < at + head + 4 + len {
            break;
        }
        let mask = [buf[at + head], buf[at + head + 1], buf[at + head + 2], buf[at + head + 3]];
        let body: Vec<u8> =
            buf[at + head + 4..at + head + 4 + len].iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
        if b0 & 0x0f == 0x2 {
            out.push(body);
        } else if b0 & 0x0f == 0x8 {
            return Err(());
        }
        at += head + 4 + len;
    }
    Ok((out, at))
}

/// Answers what a client sent (Hello, Subscribe, Paint); queues paints for the tick.
fn answer(c: &mut Client, payload: &[u8], canvas: &Mutex<Canvas>, paints: &mut Vec<(u16, u16, u8)>) -> Vec<u8> {
    let mut reply = Vec::new();
    let mut at = 0;
    while at < payload.len() {
        let Ok(Decoded::Frame { frame: f, len }) = ClientFrame::decode(&payload[at..]) else { break };
        at += len;
        let Ok(cv) = canvas.lock() else { break };
        match f {
            ClientFrame::Hello(h) => reply.extend(frame(&ServerFrame::Welcome(Welcome {
                version: h.version,
                user: 1,
                role: Role::User,
                name: "floor",
                width: cv.g.width(),
                height: cv.g.height(),
                bpp: cv.g.bpp(),
                tile_size: cv.g.tile_size(),
                cooldown_ms: 0,
                ready_at_ms: 0,
                server_time_ms: 0,
                palette: &PALETTE,
            }))),
            ClientFrame::Subscribe(s) => {
                c.subscribed = true;
                c.reading = false;
                for t in s.tiles {
                    if let Some(data) = cv.tiles.get(t.tile() as usize) {
                        let seq = cv.seqs[t.tile() as usize];
                        reply.extend(frame(&ServerFrame::TileData(TileData { tile: t.tile(), seq, data })));
                    }
                }
            }
            ClientFrame::Paint(p) => {
                paints.push((p.x, p.y, p.colour));
                reply.extend(frame(&ServerFrame::Ack(Ack { req: p.req, value: cv.seq + paints.len() as u64 })));
            }
            _ => {}
        }
    }
    if reply.is_empty() { reply } else { ws_message(&reply) }
}

/// Writes `bytes` (after the client's backlog) without blocking; false when the client must go.
fn send(c: &mut Client, bytes: &[u8]) -> bool {
    if !c.backlog.is_empty() {
        match c.stream.write(&c.backlog) {
            Ok(n) => drop(c.backlog.drain(..n)),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return false,
        }
        if !c.backlog.is_empty() {
            c.backlog.extend_from_slice(bytes);
            return c.backlog.len() <= MAX_BACKLOG;
        }
    }
    match c.stream.write(bytes) {
        Ok(n) if n == bytes.len() => true,
        Ok(n) => {
            c.backlog.extend_from_slice(&bytes[n..]);
            true
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => {
            c.backlog.extend_from_slice(bytes);
            c.backlog.len() <= MAX_BACKLOG
        }
        Err(_) => false,
    }
}

/// Reads an HTTP request head from a new connection and answers it: the snapshot and canvas
/// info, or the WebSocket upgrade (then the stream is a client).
fn handshake(mut s: TcpStream, canvas: &Mutex<Canvas>) -> Option<TcpStream> {
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).ok().filter(|n| *n > 0)?;
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            return None;
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let path = text.split_whitespace().nth(1).unwrap_or("");
    let key = text.lines().find_map(|l| {
        l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-key")).map(|(_, v)| v.trim())
    });
    if let Some(key) = key {
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let reply = format!(
            "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-accept: {accept}\r\n\r\n"
        );
        s.write_all(reply.as_bytes()).ok()?;
        s.set_nodelay(true).ok()?;
        return Some(s);
    }
    let (ctype, body) = match path {
        "/canvas/snapshot" => ("application/octet-stream", canvas.lock().ok()?.snapshot()),
        _ => {
            let cv = canvas.lock().ok()?;
            let json = format!("{{\"width\":{},\"height\":{}}}", cv.g.width(), cv.g.height());
            ("application/json", json.into_bytes())
        }
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(&body).ok()?;
    None
}

/// Serves the floor on `addr` until `args.seconds` have passed. Prints the bound address.
pub fn serve(addr: SocketAddr, args: &FloorArgs) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    println!("floor listening on {}", listener.local_addr()?);
    run(listener, args)
}

/// Serves the floor on `listener` until `args.seconds` have passed, then prints what it did.
pub fn run(listener: TcpListener, args: &FloorArgs) -> std::io::Result<()> {
    let g = Geometry::new(args.width, args.height, 4, args.tile)
        .map_err(|e| std::io::Error::new(ErrorKind::InvalidInput, e.to_string()))?;
    let canvas = Arc::new(Mutex::new(Canvas {
        g,
        tiles: vec![vec![0u8; g.tile_bytes()]; g.tile_count() as usize],
        seqs: vec![0; g.tile_count() as usize],
        seq: 0,
    }));
    let (tx, rx) = std::sync::mpsc::channel::<TcpStream>();
    let accept_canvas = canvas.clone();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            if let Some(s) = handshake(s, &accept_canvas)
                && s.set_nonblocking(true).is_ok()
                && tx.send(s).is_err()
            {
                return;
            }
        }
    });
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let tick = Duration::from_millis(args.tick_ms.max(1));
    let mut clients: Vec<Client> = Vec::new();
    let mut next = Instant::now() + tick;
    let mut scratch = vec![0u8; 16 * 1024];
    let mut paints: Vec<(u16, u16, u8)> = Vec::new();
    let (mut ticks, mut writes, mut sweep_us) = (0u64, 0u64, 0u64);
    while Instant::now() < until {
        while let Ok(s) = rx.try_recv() {
            clients.push(Client {
                stream: s,
                inbound: Vec::new(),
                backlog: Vec::new(),
                subscribed: false,
                reading: true,
            });
        }
        // What clients sent: non-blocking reads (painters' paints, handshakes' frames).
        clients.retain_mut(|c| {
            loop {
                if !c.reading {
                    return true;
                }
                match c.stream.read(&mut scratch) {
                    Ok(0) => return false,
                    Ok(n) => {
                        c.inbound.extend_from_slice(&scratch[..n]);
                        let Ok((payloads, used)) = ws_frames(&c.inbound) else { return false };
                        c.inbound.drain(..used);
                        for p in payloads {
                            let reply = answer(c, &p, &canvas, &mut paints);
                            if !reply.is_empty() && !send(c, &reply) {
                                return false;
                            }
                        }
                        if c.inbound.len() > MAX_INBOUND {
                            return false;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                    Err(_) => return false,
                }
            }
        });
        if Instant::now() < next {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        next += tick;
        if paints.is_empty() {
            continue;
        }
        // The tick: one Pixels frame per tile, one message, encoded once.
        let message = {
            let Ok(mut cv) = canvas.lock() else { break };
            let mut per_tile: BTreeMap<u32, Vec<PixelUpdate>> = BTreeMap::new();
            for (x, y, colour) in paints.drain(..) {
                let Some(loc) = cv.g.locate(u32::from(x), u32::from(y)) else { continue };
                let bpp = cv.g.bpp();
                set_pixel(&mut cv.tiles[loc.tile as usize], bpp, loc.offset, colour);
                per_tile.entry(loc.tile).or_default().push(PixelUpdate::new(loc.offset, colour));
            }
            let mut payload = Vec::new();
            for (tile, updates) in per_tile {
                let prev = cv.seqs[tile as usize];
                cv.seq += updates.len() as u64;
                let last = prev + updates.len() as u64;
                cv.seqs[tile as usize] = last;
                payload.extend(frame(&ServerFrame::Pixels(Pixels {
                    head: PixelsHead::new(tile, prev, last),
                    updates: &updates,
                })));
            }
            ws_message(&payload)
        };
        let started = Instant::now();
        clients.retain_mut(|c| {
            if !c.subscribed {
                return true;
            }
            writes += 1;
            send(c, &message)
        });
        sweep_us += started.elapsed().as_micros() as u64;
        ticks += 1;
    }
    let per = |v: u64| v.checked_div(ticks).unwrap_or(0);
    println!(
        "{}",
        serde_json::json!({
            "floor": true, "ticks_with_paints": ticks, "socket_writes": writes,
            "sweep_us_per_tick": per(sweep_us), "clients_at_end": clients.len(),
        })
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut out = vec![0x80 | opcode];
        if payload.len() < 126 {
            out.push(0x80 | payload.len() as u8);
        } else {
            out.push(0x80 | 126);
            out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn client_frames_are_unmasked_whole_and_partial_ones_wait() {
        let big = vec![7u8; 300];
        let mut buf = masked(0x2, b"hello");
        buf.extend(masked(0x2, &big));
        let (payloads, used) = ws_frames(&buf).unwrap();
        assert_eq!((payloads, used), (vec![b"hello".to_vec(), big.clone()], buf.len()));
        let cut = &buf[..buf.len() - 1];
        let (payloads, used) = ws_frames(cut).unwrap();
        assert_eq!((payloads.len(), used), (1, 11), "the second waits for its last byte");
        assert!(ws_frames(&[0x82, 0x05, 1, 2, 3, 4, 5]).is_err(), "unmasked client frame");
        assert!(ws_frames(&masked(0x8, b"")).is_err(), "a close ends the connection");
    }

    #[test]
    fn server_messages_carry_their_length() {
        assert_eq!(ws_message(b"ab"), [0x82, 2, b'a', b'b']);
        let m = ws_message(&[0u8; 200]);
        assert_eq!((&m[..4], m.len()), (&[0x82, 126, 0, 200][..], 204));
    }
}
