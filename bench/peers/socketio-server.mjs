// Peer chat server: socket.io 4, WebSocket transport only.
//
//   node socketio-server.mjs [PORT]      (or env PORT; default 9301; 0 = ephemeral)
//
// Events (wire format in README.md):
//   "join" room           -> socket.join(room); ack({room}) if asked; emit "joined" {room}
//   "msg"  {room, body, ts, seq} -> io.to(room).emit("msg", payload), sender included
//
// Prints exactly one line, "listening <port>", once ready. No per-message output.
// PING_INTERVAL_MS / PING_TIMEOUT_MS override the Engine.IO heartbeat (socket.io's
// defaults, 25000 / 20000, when unset); only the smoke test sets them.
//
// REDIS_URL (e.g. redis://127.0.0.1:6379/0) turns on @socket.io/redis-adapter (the classic
// pub/sub adapter): several of these processes behind one balancer, sharing one Redis, then
// form one chat, each broadcast going to the members on every process. REDIS_KEY sets the
// adapter's channel prefix (default "socket.io"). Unset: the in-memory adapter, one process.
import { createServer } from "node:http";
import { Server } from "socket.io";

const HOST = "127.0.0.1";
const port = Number(process.argv[2] ?? process.env.PORT ?? 9301);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`bad port: ${process.argv[2] ?? process.env.PORT}`);
  process.exit(2);
}

const options = {
  transports: ["websocket"],
  perMessageDeflate: false,
  httpCompression: false,
  serveClient: false,
  allowEIO3: false,
};
if (process.env.PING_INTERVAL_MS) options.pingInterval = Number(process.env.PING_INTERVAL_MS);
if (process.env.PING_TIMEOUT_MS) options.pingTimeout = Number(process.env.PING_TIMEOUT_MS);

// GET /readyz answers 200 (a balancer's health check, as HAProxy does in the cluster
// benchmark); any other request that is not socket.io's gets 404. (socket.io answers its own
// path, /socket.io/, before this handler sees anything.)
const httpServer = createServer((req, res) => {
  res.writeHead(req.url === "/readyz" && req.method === "GET" ? 200 : 404, { "content-type": "text/plain" });
  res.end(req.url === "/readyz" ? "ready\n" : "not found\n");
});
const io = new Server(httpServer, options);

// The Redis adapter: a publishing client and a subscribing one (pub/sub needs its own
// connection), both connected before the server listens.
const redisClients = [];
if (process.env.REDIS_URL) {
  const [{ createClient }, { createAdapter }] = await Promise.all([import("redis"), import("@socket.io/redis-adapter")]);
  const pubClient = createClient({ url: process.env.REDIS_URL });
  const subClient = pubClient.duplicate();
  for (const c of [pubClient, subClient]) {
    c.on("error", (err) => console.error(`redis: ${err.message}`));
    redisClients.push(c);
  }
  await Promise.all([pubClient.connect(), subClient.connect()]);
  io.adapter(createAdapter(pubClient, subClient, { key: process.env.REDIS_KEY || "socket.io" }));
}

io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    if (typeof room !== "string") return;
    socket.join(room);
    if (typeof ack === "function") ack({ room });
    socket.emit("joined", { room });
  });

  socket.on("msg", (payload) => {
    if (payload === null || typeof payload !== "object" || typeof payload.room !== "string") return;
    io.to(payload.room).emit("msg", payload);
  });
});

httpServer.listen({ host: HOST, port, backlog: 4096 }, () => {
  process.stdout.write(`listening ${httpServer.address().port}\n`);
});

let stopping = false;
function shutdown() {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(0), 2000).unref();
  io.close(() => {
    Promise.allSettled(redisClients.map((c) => c.quit())).then(() => process.exit(0));
  });
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
