import { chromium } from "playwright-core";
const mode = process.argv[2];
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true,
  args: ["--headless","--no-sandbox","--disable-gpu","--no-first-run","--disable-background-networking","--disable-component-update","--disable-sync"] });
const ctx = await browser.newContext();
const page = await ctx.newPage();
page.on("console", (m) => console.log("console", m.type(), m.text()));
const cdp = await ctx.newCDPSession(page);
await cdp.send("Network.enable");
for (const ev of ["Network.webTransportCreated", "Network.webTransportConnectionEstablished", "Network.webTransportClosed"]) cdp.on(ev, (p) => console.log("CDP", ev, JSON.stringify(p).slice(0, 200)));
await page.goto("http://127.0.0.1:18080/");
const name = "probe" + Math.floor(Math.random() * 1e6);
const r = await page.evaluate(async ([mode, name]) => {
  const out = {};
  let res = await fetch("/signup", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: name, password: "correct horse battery" }) });
  res = await fetch("/wt/ticket", { method: "POST" });
  const t = await res.json();
  const hashes = t.cert_hashes.map((h) => ({ algorithm: "sha-256", value: new Uint8Array(h.match(/../g).map((b) => parseInt(b, 16))) }));
  const { encodeClient, StreamDecoder } = await import("/codec.js");
  const url = mode === "badticket" ? t.url + "?ticket=nope" : t.url + "?ticket=" + t.ticket;
  try {
    const wt = new WebTransport(url, { serverCertificateHashes: hashes });
    const closed = wt.closed.then((c) => (out.closedOk = c), (e) => (out.closedErr = { s: String(e), name: e.name, source: e.source, code: e.streamErrorCode, msg: e.message }));
    await wt.ready;
    out.ready = true;
    const s = await wt.createBidirectionalStream();
    const w = s.writable.getWriter();
    await w.write(encodeClient({ type: "Hello", version: 1, kind: "browser", agent: "probe" }));
    const rd = s.readable.getReader();
    const dec = new StreamDecoder("server");
    out.frames = [];
    const reading = (async () => { try { for (;;) { const { value, done } = await rd.read(); if (done) { out.eof = true; break; } out.frames.push(...dec.push(value).frames.map((f) => f.type + (f.reason ? ":" + f.reason : ""))); } } catch (e) { out.readErr = String(e); } })();
    await new Promise((r) => setTimeout(r, 300));
    if (mode === "malformed") await w.write(new Uint8Array([0x7f, 0, 0, 0, 0]));
    if (mode === "ban") window.__ban = true;
    if (mode === "second") { try { await wt.createBidirectionalStream(); } catch (e) { out.second = String(e); } }
    if (mode === "client") wt.close({ closeCode: 4000, reason: "malformed" });
    await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
    await reading;
  } catch (e) {
    out.error = { s: String(e), name: e.name, source: e.source, code: e.streamErrorCode };
  }
  return out;
}, [mode, name]);
console.log(JSON.stringify(r));
await browser.close();
