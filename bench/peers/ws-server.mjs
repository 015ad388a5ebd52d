// Peer chat server: plain `ws` 8 WebSocketServer with its own room sets.
//
//   node ws-server.mjs [PORT]      (or env PORT; default 9302; 0 = ephemeral)
//
// JSON text frames (wire format in README.md):
//   {"t":"join","room":"r"}                          -> reply {"t":"joined","room":"r"}
//   {"t":"msg","room":"r","body":..,"ts":..,"seq":..} -> the same frame, byte for byte,
//                                                       to every member of "r", sender included
//
// Prints exactly one line, "listening <port>", once ready. No per-message output.
import { WebSocketServer, WebSocket } from "ws";

const HOST = "127.0.0.1";
const port = Number(process.argv[2] ?? process.env.PORT ?? 9302);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`bad port: ${process.argv[2] ?? process.env.PORT}`);
  process.exit(2);
}

/** room name -> Set of sockets in it */
const rooms = new Map();
/** every open socket, for shutdown (clientTracking is off) */
const clients = new Set();

const wss = new WebSocketServer({
  host: HOST,
  port,
  backlog: 4096,
  perMessageDeflate: false,
  clientTracking: false,
});

wss.on("connection", (ws) => {
  clients.add(ws);
  /** rooms this socket joined, to leave them on close */
  const joined = new Set();

  ws.on("message", (data, isBinary) => {
    if (isBinary) return;
    let m;
    try {
      m = JSON.parse(data.toString());
    } catch {
      return;
    }
    if (m === null || typeof m !== "object" || typeof m.room !== "string") return;

    if (m.t === "msg") {
      const members = rooms.get(m.room);
      if (members === undefined) return;
      // The frame is already serialized: forward the received bytes once to everyone
      // (as a text frame), with no re-encoding per member.
      for (const peer of members) {
        if (peer.readyState === WebSocket.OPEN) peer.send(data, { binary: false });
      }
    } else if (m.t === "join") {
      let members = rooms.get(m.room);
      if (members === undefined) {
        members = new Set();
        rooms.set(m.room, members);
      }
      members.add(ws);
      joined.add(m.room);
      ws.send(JSON.stringify({ t: "joined", room: m.room }));
    }
  });

  ws.on("close", () => {
    clients.delete(ws);
    for (const room of joined) {
      const members = rooms.get(room);
      if (members === undefined) continue;
      members.delete(ws);
      if (members.size === 0) rooms.delete(room);
    }
  });

  ws.on("error", () => {}); // a bad frame closes the socket; 'close' cleans up
});

wss.on("listening", () => {
  process.stdout.write(`listening ${wss.address().port}\n`);
});

let stopping = false;
function shutdown() {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(0), 2000).unref();
  for (const ws of clients) ws.terminate();
  wss.close(() => process.exit(0));
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
