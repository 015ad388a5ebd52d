// The swarm's observer inside each page, installed with context.addInitScript (so it runs
// before the client's own modules). It only watches; every action on the page is a real
// mouse click or key press sent by swarm.mjs. Everything it records carries Date.now() of the
// page: all pages and the driver run on one machine, so their clocks agree.
//
// - requestAnimationFrame is wrapped so that after each frame the client itself asked for
//   (the canvas redraws in rAF after a Pixels frame) the observer checks the pixels it expects
//   from every painter whose tile it holds: a change is timed in the frame that draws it, and
//   the observer adds no frames of its own. The same check also runs in a task right after
//   each message the page receives (WebSocket message events, WebTransport stream reads:
//   the client applies a frame synchronously when it reads it), which times the pixel's
//   arrival in the page's replica; and every 500 ms as a backstop. What such a check finds
//   first gets its first-seen time there and its frame time from the next frame.
// - window.pixelparty.state.lastPaint / lastPaintError / connection get setters, so an ack, a
//   refusal and a connection change are timed when the client records them.
// - pointerdown on #canvas (the click that paints) and submit of #message-form (a chat
//   message) are timed in the capture phase, before the client handles them.
// - a MutationObserver on #messages times each message's first appearance in the list.
//
// The plan (swarm.mjs): painter i owns the 8×8 block at blocks[i]; its k-th paint is pixel
// k mod 64 of that block (row-major) in colour 1 + k mod (colours - 1). So every page knows
// what to expect from every other page without any message between them.
(() => {
  const S = {
    plan: null,
    seen: [], // [painter, k, firstSeenMs, tileSubscribedSinceMs, frameMs (null: no frame drew it yet)]
    acks: [], // [x, y, colour, seq, timeMs]
    refusals: [], // [code, timeMs]
    downs: [], // [timeMs, clientX, clientY]
    sends: [], // [timeMs, text]
    chat: [], // [sender, k, timeMs]
    conn: [], // [timeMs, state]
    frames: 0,
    checks: 0,
  };
  window.__swarm = S;
  const raf = window.requestAnimationFrame.bind(window);
  let lastTs = -1;
  window.requestAnimationFrame = (cb) => raf((ts) => {
    try {
      cb(ts);
    } finally {
      if (ts !== lastTs && S.plan) {
        lastTs = ts;
        S.frames++;
        check(true);
      }
    }
  });

  // Arrival hooks: a check in a task after each received message (coalesced).
  let kicked = false;
  const kick = () => {
    if (kicked || !S.plan) return;
    kicked = true;
    setTimeout(() => {
      kicked = false;
      check(false);
    }, 0);
  };
  const NativeWebSocket = window.WebSocket;
  window.WebSocket = class extends NativeWebSocket {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", kick); // registered before the client's onmessage
    }
  };
  const nativeRead = ReadableStreamDefaultReader.prototype.read;
  ReadableStreamDefaultReader.prototype.read = function read(...args) {
    return nativeRead.apply(this, args).then((r) => {
      if (!r.done) kick();
      return r;
    });
  };

  const since = new Map(); // tile → Date.now() when this page first held it subscribed
  let next = null; // per painter: the k expected next
  let blockTile = null;

  function pixelOf(i, k) {
    const [bx, by] = S.plan.blocks[i];
    const j = k % 64;
    return [bx + (j % 8), by + Math.floor(j / 8)];
  }
  const colourOf = (k) => 1 + (k % (S.plan.colours - 1));

  let pending = []; // seen entries found by the timer, waiting for a frame

  function check(inFrame) {
    const pp = window.pixelparty;
    const now = Date.now();
    S.checks++;
    if (inFrame && pending.length) {
      for (const e of pending) e[4] = now;
      pending = [];
    }
    const tiles = pp.subscribedTiles();
    const held = new Set(tiles);
    for (const t of tiles) if (!since.has(t)) since.set(t, now);
    for (const t of [...since.keys()]) if (!held.has(t)) since.delete(t);
    const n = S.plan.blocks.length;
    for (let i = 0; i < n; i++) {
      const tile = blockTile[i];
      if (!since.has(tile)) continue;
      // Up to 3 refused or lost paints in a row are skipped over.
      for (let j = 0; j < 4; j++) {
        const k = next[i] + j;
        const [x, y] = pixelOf(i, k);
        if (pp.pixelAt(x, y) === colourOf(k)) {
          const e = [i, k, now, since.get(tile), inFrame ? now : null];
          S.seen.push(e);
          if (!inFrame) pending.push(e);
          next[i] = k + 1;
          break;
        }
      }
    }
  }

  function trap(obj, key, onSet) {
    let v = obj[key];
    Object.defineProperty(obj, key, {
      configurable: true,
      enumerable: true,
      get: () => v,
      set: (n) => {
        v = n;
        onSet(n);
      },
    });
  }

  S.start = (plan) => {
    S.plan = plan;
    const pp = window.pixelparty;
    const g = pp.state.geometry;
    next = new Array(plan.blocks.length).fill(0);
    blockTile = plan.blocks.map(([x, y]) => g.locate(x, y).tile);
    trap(pp.state, "lastPaint", (p) => {
      if (p) S.acks.push([p.x, p.y, p.colour, p.seq, Date.now()]);
    });
    trap(pp.state, "lastPaintError", (e) => {
      if (e) S.refusals.push([e.code, Date.now()]);
    });
    trap(pp.state, "connection", (c) => S.conn.push([Date.now(), c]));
    document.getElementById("canvas").addEventListener("pointerdown", (e) => {
      S.downs.push([Date.now(), e.clientX, e.clientY]);
    }, { capture: true });
    document.getElementById("message-form").addEventListener("submit", () => {
      S.sends.push([Date.now(), document.getElementById("message").value]);
    }, { capture: true });
    const re = /^swarm (\d+)\.(\d+) /;
    new MutationObserver((records) => {
      const now = Date.now();
      for (const r of records) {
        for (const node of r.addedNodes) {
          if (node.nodeType !== 1 || !node.dataset?.seq) continue;
          const m = re.exec(node.querySelector(".text")?.textContent ?? "");
          if (m) S.chat.push([Number(m[1]), Number(m[2]), now]);
        }
      }
    }).observe(document.getElementById("messages"), { childList: true });
    setInterval(() => check(false), 500);
    check(false);
  };

  S.dump = () => ({
    seen: S.seen,
    acks: S.acks,
    refusals: S.refusals,
    downs: S.downs,
    sends: S.sends,
    chat: S.chat,
    conn: S.conn,
    frames: S.frames,
    checks: S.checks,
    since: [...since.entries()],
    state: {
      connection: window.pixelparty.state.connection,
      transport: window.pixelparty.state.transport,
      closed: window.pixelparty.state.closed,
      user: window.pixelparty.state.user?.username ?? null,
    },
  });
})();
