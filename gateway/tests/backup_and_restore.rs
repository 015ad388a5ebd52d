//! Backups and restores through the real server and the real `pixelparty restore` binary:
//! a backup taken while paints and messages are acknowledged holds every one acknowledged
//! before it began, restores into a store whose journal and rooms are exactly a prefix of the
//! source's, and serves again (same accounts, sessions, canvas). Damaged backups are refused;
//! retention keeps the newest; a griefing raid is undone live (`/canvas/rewind`) and offline
//! (`restore --canvas-at`). The same backup and restore run against a real S3 API server
//! (moto) when `moto_server` is installed (required under `CI=true`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::cell::RefCell;
use std::path::Path;
use std::process::Command;
use std::rc::Rc;

use common::*;
use pixelparty_bench::client::Replica;
use pixelparty_storage::{PixelRecord, Store, StoreConfig};
use serde_json::{Value, json};

/// Runs `pixelparty <args>`; its status and output.
fn pixelparty(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pixelparty")).args(args).envs(env.iter().copied()).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn journal(store: &Store) -> Vec<PixelRecord> {
    store.wait(|b| b.journal_after(0, 1_000_000)).unwrap()
}

fn messages(store: &Store, room: u32) -> Vec<(u64, String)> {
    let page = store.wait(move |b| b.room_history(room, u64::MAX, 100_000, std::sync::Arc::from(Vec::new()))).unwrap();
    let mut v: Vec<(u64, String)> = page.into_iter().map(|m| (m.seq, m.text)).collect();
    v.sort();
    v
}

/// What the load recorded: every acknowledged paint `(x, y, colour, seq)` and message
/// `(seq, text)`, and how many of each were acknowledged when the backup was asked for.
#[derive(Default)]
struct Load {
    paints: Vec<(u16, u16, u8, u64)>,
    messages: Vec<(u64, String)>,
    at_backup: Option<(usize, usize)>,
    manifest: Option<Value>,
    /// The painter's session, made before the backup.
    painter_token: String,
}

/// Paints and chats on two connections while a backup is taken over the admin endpoint (asked
/// for after the 150th acknowledged paint); stops 150 paints after it answered.
async fn backup_under_load(t: &TestServer, room: u32) -> Load {
    let load = Rc::new(RefCell::new(Load::default()));
    let painter_account = t.user("painter").await;
    load.borrow_mut().painter_token = painter_account.token.clone();
    let talker_account = t.user("talker").await;
    let mut painter = t.connect(&painter_account).await;
    let mut talker = t.connect(&talker_account).await;
    let req = talker.join(room).await.unwrap();
    talker.wait_for(ack_of(req)).await.unwrap();
    let started = Rc::new(tokio::sync::Notify::new());
    let done = Rc::new(tokio::sync::Notify::new());
    let paint = {
        let (load, started, done) = (load.clone(), started.clone(), done.clone());
        async move {
            let mut after_backup = None;
            for i in 0u32.. {
                let (x, y, c) = ((i * 7 % 256) as u16, (i * 13 / 256 % 256) as u16, (i % 15 + 1) as u8);
                let req = painter.paint(x, y, c).await.unwrap();
                let seq = painter.wait_for(ack_of(req)).await.unwrap();
                load.borrow_mut().paints.push((x, y, c, seq));
                if i == 150 {
                    started.notify_one();
                }
                if after_backup.is_none() && load.borrow().manifest.is_some() {
                    after_backup = Some(i);
                }
                if after_backup.is_some_and(|a| i >= a + 150) {
                    break;
                }
            }
            done.notify_waiters();
        }
    };
    let chat = {
        let (load, done) = (load.clone(), done.clone());
        async move {
            let stop = done.notified();
            tokio::pin!(stop);
            for i in 0u32.. {
                let text = format!("message {i}");
                let req = talker.say(room, &text).await.unwrap();
                tokio::select! {
                    seq = talker.wait_for(ack_of(req)) => load.borrow_mut().messages.push((seq.unwrap(), text)),
                    _ = &mut stop => break,
                }
            }
        }
    };
    let backup = {
        let load = load.clone();
        async move {
            started.notified().await;
            let counts = (load.borrow().paints.len(), load.borrow().messages.len());
            load.borrow_mut().at_backup = Some(counts);
            let manifest = t.admin_call("POST", "/backup", Value::Null).await;
            load.borrow_mut().manifest = Some(manifest);
        }
    };
    tokio::join!(paint, chat, backup);
    Rc::try_unwrap(load).ok().unwrap().into_inner()
}

/// Checks a restored store against its stopped source and the load's acknowledgements.
fn compare(source: &Store, restored: &Store, load: &Load, room: u32) {
    let manifest = load.manifest.as_ref().unwrap();
    let head = manifest["canvas_seq"].as_u64().unwrap();
    let (paints_before, messages_before) = load.at_backup.unwrap();
    let (src, got) = (journal(source), journal(restored));
    assert_eq!(got.len() as u64, head, "the restored journal ends at the manifest's sequence");
    assert_eq!(got[..], src[..got.len()], "the restored journal is a prefix of the source's");
    assert!(src.len() > got.len(), "paints went on after the backup");
    for &(x, y, c, seq) in &load.paints[..paints_before] {
        let r =
            got.iter().find(|r| r.seq == seq).unwrap_or_else(|| panic!("acknowledged paint {seq} is in the backup"));
        assert_eq!((r.x, r.y, r.colour), (x, y, c));
    }
    let (src_msgs, got_msgs) = (messages(source, room), messages(restored, room));
    assert_eq!(got_msgs[..], src_msgs[..got_msgs.len()], "the restored room is a prefix of the source's");
    for m in &load.messages[..messages_before] {
        assert!(got_msgs.contains(m), "acknowledged message {m:?} is in the backup");
    }
    // The canvas it recovers is the source's journal replayed up to the backup's sequence.
    let g = source.wait(|b| b.canvas_geometry()).unwrap().unwrap();
    let canvas = restored.wait(move |b| b.recover_canvas(g)).unwrap();
    let mut expect = vec![vec![0u8; g.tile_bytes()]; g.tile_count() as usize];
    for r in src.iter().filter(|r| r.seq <= head) {
        let loc = g.locate(u32::from(r.x), u32::from(r.y)).unwrap();
        pixelparty_protocol::canvas::set_pixel(&mut expect[loc.tile as usize], g.bpp(), loc.offset, r.colour);
    }
    assert_eq!(canvas.tiles, expect, "the restored canvas is the source's at the backup's sequence");
}

fn open(dir: &Path) -> Store {
    Store::open(StoreConfig::new(dir.join("db"))).unwrap()
}

/// A server on a restored data directory: the same account logs in, its old session token
/// still works, and the canvas is the restored one.
async fn serves_again(dir: &Path, token: &str) -> Replica {
    let mut c = pixelparty_gateway::config::Config::loopback(dir);
    c.canvas.width = 256;
    c.canvas.height = 256;
    c.canvas.tile_size = 64;
    let server = pixelparty_gateway::server::Server::start(c).unwrap();
    let api = pixelparty_bench::client::Api::new(server.http_addr);
    api.login("painter", PASSWORD).await.unwrap();
    assert_eq!(api.ok("GET", "/account", Some(token), None).await.unwrap()["username"], "painter");
    let replica = Replica::from_snapshot(api.snapshot().await.unwrap());
    server.shutdown();
    replica
}

#[tokio::test(flavor = "current_thread")]
async fn a_backup_taken_under_load_restores_exactly() {
    let mut t = start(|c| c.storage.durability = "sync".into());
    let owner = t.user("owner").await;
    let room = t.api.create_room(&owner.token, "lobby").await.unwrap();
    let load = backup_under_load(&t, room).await;
    let painter_token = load.painter_token.clone();
    t.server.take().unwrap().shutdown();

    let backups = t.dir.path().join("backups");
    let (ok, listed) = pixelparty(&["restore", "--from", backups.to_str().unwrap(), "--list"], &[]);
    assert!(ok, "{listed}");
    let id = load.manifest.as_ref().unwrap()["id"].as_str().unwrap().to_owned();
    assert!(listed.contains(&id), "{listed}");

    let target = tempfile::tempdir().unwrap();
    let data = target.path().join("data");
    let (ok, out) =
        pixelparty(&["restore", "--from", backups.to_str().unwrap(), "--data", data.to_str().unwrap()], &[]);
    assert!(ok && out.contains("verified row for row"), "{out}");
    let (ok, out) =
        pixelparty(&["restore", "--from", backups.to_str().unwrap(), "--data", data.to_str().unwrap()], &[]);
    assert!(!ok && out.contains("already holds a store"), "a restore never overwrites a store: {out}");
    {
        let (source, restored) = (open(t.dir.path()), open(&data));
        compare(&source, &restored, &load, room);
    }
    let replica = serves_again(&data, &painter_token).await;
    let head = load.manifest.as_ref().unwrap()["canvas_seq"].as_u64().unwrap();
    let last = load
        .paints
        .iter()
        .filter(|p| p.3 <= head)
        .map(|p| ((p.0, p.1), p.2))
        .collect::<std::collections::HashMap<_, _>>();
    for ((x, y), c) in last {
        assert_eq!(replica.pixel(u32::from(x), u32::from(y)), Some(c), "pixel ({x}, {y}) as of the backup");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn damaged_or_incomplete_backups_are_refused_and_retention_keeps_the_newest() {
    let mut t = start(|c| c.backup.retain = 2);
    let backups = t.dir.path().join("backups");
    // Beside the backups: a folder of someone else's, a young incomplete backup (perhaps
    // another process's, still uploading) and an old one that failed half-way.
    for (dir, file) in
        [("notes", "keep.txt"), ("29990101T000000000Z", "users.rows.gz"), ("20200101T000000000Z", "users.rows.gz")]
    {
        std::fs::create_dir_all(backups.join(dir)).unwrap();
        std::fs::write(backups.join(dir).join(file), b"x").unwrap();
    }
    let a = t.user("alice").await;
    let mut conn = t.connect(&a).await;
    let mut ids = Vec::new();
    for i in 0..3u16 {
        let req = conn.paint(i, i, 3).await.unwrap();
        conn.wait_for(ack_of(req)).await.unwrap();
        let m = t.admin_call("POST", "/backup", Value::Null).await;
        ids.push(m["id"].as_str().unwrap().to_owned());
    }
    let listed = t.admin_call("GET", "/backups", Value::Null).await;
    let kept: Vec<&str> = listed["backups"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(kept, [ids[1].as_str(), ids[2].as_str()], "the newest two are kept, oldest first");
    assert!(!backups.join(&ids[0]).exists(), "the oldest is removed");
    assert!(!backups.join("20200101T000000000Z").exists(), "an old incomplete backup is removed");
    assert!(backups.join("notes/keep.txt").exists(), "what is not a backup is left alone");
    assert!(backups.join("29990101T000000000Z").exists(), "a young incomplete backup is left alone");
    std::fs::remove_dir_all(backups.join("29990101T000000000Z")).unwrap();
    drop(conn);
    t.server.take().unwrap().shutdown();

    // One flipped byte in one file: the checksum refuses it before anything is written.
    let file = backups.join(&ids[2]).join("journal.rows.gz");
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&file, bytes).unwrap();
    let target = tempfile::tempdir().unwrap();
    let data = target.path().join("d1");
    let (ok, out) =
        pixelparty(&["restore", "--from", backups.to_str().unwrap(), "--data", data.to_str().unwrap()], &[]);
    assert!(!ok && out.contains("does not match its checksum"), "{out}");
    assert!(!data.join("db").exists(), "nothing restored from a damaged backup");
    // Rows that are not the manifest's, in a file whose checksum was made to match: the
    // restore fails while importing, and leaves no store and no staging directory behind.
    let good = std::fs::read(backups.join(&ids[1]).join("journal.rows.gz")).unwrap();
    let other = std::fs::read(backups.join(&ids[1]).join("users.rows.gz")).unwrap();
    std::fs::write(backups.join(&ids[1]).join("journal.rows.gz"), &other).unwrap();
    let manifest_path = backups.join(&ids[1]).join("manifest.json");
    let original = std::fs::read_to_string(&manifest_path).unwrap();
    let mut m: Value = serde_json::from_str(&original).unwrap();
    let sha: String = {
        use sha2::Digest as _;
        sha2::Sha256::digest(&other).iter().map(|b| format!("{b:02x}")).collect()
    };
    for f in m["files"].as_array_mut().unwrap() {
        if f["keyspace"] == "journal" {
            f["bytes"] = json!(other.len());
            f["sha256"] = json!(sha);
        }
    }
    std::fs::write(&manifest_path, serde_json::to_vec(&m).unwrap()).unwrap();
    let data = target.path().join("d0");
    let (ok, out) = pixelparty(
        &["restore", "--from", backups.to_str().unwrap(), "--backup", &ids[1], "--data", data.to_str().unwrap()],
        &[],
    );
    assert!(!ok && out.contains("does not hold the rows its manifest lists"), "{out}");
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 0, "no store, no staging directory left in {data:?}");
    std::fs::write(backups.join(&ids[1]).join("journal.rows.gz"), &good).unwrap();
    std::fs::write(&manifest_path, original).unwrap();
    // A backup without its manifest is incomplete: not listed, not restored; the older one is.
    std::fs::remove_file(backups.join(&ids[2]).join("manifest.json")).unwrap();
    let data = target.path().join("d2");
    let (ok, out) =
        pixelparty(&["restore", "--from", backups.to_str().unwrap(), "--data", data.to_str().unwrap()], &[]);
    assert!(ok && out.contains(&ids[1]), "the newest complete backup is restored: {out}");
    let restored = open(&data);
    assert_eq!(journal(&restored).len(), 2, "backup {} held two paints", ids[1]);
    let data = target.path().join("d3");
    let (ok, out) = pixelparty(
        &["restore", "--from", backups.to_str().unwrap(), "--backup", &ids[2], "--data", data.to_str().unwrap()],
        &[],
    );
    assert!(!ok, "an incomplete backup cannot be named: {out}");
}

/// Paints `art`, returns the moment after it; then a raid paints over part of it and more.
async fn art_then_raid(t: &TestServer) -> (u64, Vec<(u16, u16, u8)>) {
    let artist = t.user("artist").await;
    let raider = t.user("raider").await;
    let mut a = t.connect(&artist).await;
    let mut art = Vec::new();
    for i in 0..40u16 {
        let (x, y, c) = (10 + i % 8, 10 + i / 8, (i % 14 + 2) as u8);
        let req = a.paint(x, y, c).await.unwrap();
        a.wait_for(ack_of(req)).await.unwrap();
        art.push((x, y, c));
    }
    let moment = pixelparty_engine::now_ms();
    // The raid's updates must carry a later millisecond than the moment.
    while pixelparty_engine::now_ms() <= moment {
        tokio::task::yield_now().await;
    }
    let mut r = t.connect(&raider).await;
    for i in 0..30u16 {
        let req = r.paint(10 + i % 10, 10 + i / 10, 1).await.unwrap();
        r.wait_for(ack_of(req)).await.unwrap();
    }
    let req = r.paint(200, 200, 1).await.unwrap();
    r.wait_for(ack_of(req)).await.unwrap();
    (moment, art)
}

fn assert_art(replica: &Replica, art: &[(u16, u16, u8)]) {
    for &(x, y, c) in art {
        assert_eq!(replica.pixel(u32::from(x), u32::from(y)), Some(c), "art pixel ({x}, {y})");
    }
    assert_eq!(replica.pixel(200, 200), Some(0), "the raid's other pixel is gone");
    assert_eq!(replica.pixel(19, 11), Some(0), "never painted before the moment: blank again");
}

#[tokio::test(flavor = "current_thread")]
async fn a_raid_is_undone_live_and_offline() {
    let mut t = start(|c| c.storage.durability = "sync".into());
    let (moment, art) = art_then_raid(&t).await;
    // Offline first, from a backup taken after the raid.
    t.admin_call("POST", "/backup", Value::Null).await;
    // A rectangle only: the art comes back, the raid's pixel at (200, 200) stays.
    let report = t
        .admin_call(
            "POST",
            "/canvas/rewind",
            json!({ "at_ms": moment, "rect": { "x": 0, "y": 0, "width": 100, "height": 100 } }),
        )
        .await;
    assert_eq!(report["restored"], 30, "{report}");
    assert_eq!(report["painted_over"], 0);
    t.admin_call("POST", "/snapshot", Value::Null).await; // The served snapshot, refreshed now.
    let replica = Replica::from_snapshot(t.api.snapshot().await.unwrap());
    assert_eq!(replica.pixel(200, 200), Some(1), "outside the rectangle: left as it is");
    // The whole canvas: only (200, 200) is left to restore.
    let report = t.admin_call("POST", "/canvas/rewind", json!({ "at_ms": moment })).await;
    assert_eq!(report["restored"], 1, "{report}");
    t.admin_call("POST", "/snapshot", Value::Null).await;
    assert_art(&Replica::from_snapshot(t.api.snapshot().await.unwrap()), &art);
    let audit = t.admin_call("GET", "/audit", Value::Null).await;
    assert_eq!(audit["entries"][0]["action"], "rewind", "{audit}");
    assert!(audit["entries"][0]["detail"].as_str().unwrap().contains(&format!("({moment})")), "{audit}");
    let refused = pixelparty_bench::client::Api::new(t.admin)
        .call("POST", "/canvas/rewind", Some(&t.admin_token), Some(&json!({ "at_ms": u64::MAX })))
        .await
        .unwrap();
    assert_eq!(refused.0, 400, "a moment in the future is refused: {refused:?}");
    t.server.take().unwrap().shutdown();

    let backups = t.dir.path().join("backups");
    let target = tempfile::tempdir().unwrap();
    let data = target.path().join("data");
    let later = (pixelparty_engine::now_ms() + 60_000).to_string();
    let (ok, out) = pixelparty(
        &["restore", "--from", backups.to_str().unwrap(), "--data", data.to_str().unwrap(), "--canvas-at", &later],
        &[],
    );
    assert!(!ok && out.contains("after backup"), "a moment after the backup is refused: {out}");
    assert!(!data.join("db").exists(), "before anything is restored");
    let at = moment.to_string();
    let (ok, out) = pixelparty(
        &["restore", "--from", backups.to_str().unwrap(), "--data", data.to_str().unwrap(), "--canvas-at", &at],
        &[],
    );
    assert!(ok && out.contains("31 pixels changed"), "{out}");
    let mut c = pixelparty_gateway::config::Config::loopback(&data);
    (c.canvas.width, c.canvas.height, c.canvas.tile_size) = (256, 256, 64);
    let server = pixelparty_gateway::server::Server::start(c).unwrap();
    let api = pixelparty_bench::client::Api::new(server.http_addr);
    assert_art(&Replica::from_snapshot(api.snapshot().await.unwrap()), &art);
    server.shutdown();
}

/// A throwaway `moto_server` (an S3 API server) on a free port, with one bucket.
struct Moto {
    child: std::process::Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto() -> Option<Moto> {
    let Ok(path) = which("moto_server") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "moto_server is required under CI=true (pip install 'moto[server]')"
        );
        eprintln!("skipped: moto_server is not installed (pip install 'moto[server]')");
        return None;
    };
    use std::io::{BufRead, Read, Write};
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(path)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It says so on stderr once it listens (Werkzeug's "Running on http://...").
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    assert!(lines.any(|l| l.is_ok_and(|l| l.contains("Running on"))), "moto_server did not start");
    std::thread::spawn(move || for _ in lines {});
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "PUT /pixelparty-backups HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "bucket created: {answer}");
    Some(Moto { child, endpoint })
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|f| f.is_file()))
        .ok_or(())
}

#[test]
fn backup_to_s3_and_restore_from_it() {
    let Some(moto) = moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    let admin_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let http_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(
        &config,
        format!(
            "[server]\nhttp = \"127.0.0.1:{http_port}\"\nadmin = \"127.0.0.1:{admin_port}\"\ndata_dir = {:?}\nadmin_token = \"s3-test-token\"\n\
             [canvas]\nwidth = 256\nheight = 256\ntile_size = 64\ncooldown_ms = 0\n[webtransport]\nenabled = false\n\
             [backup]\ntarget = \"s3://pixelparty-backups/node-a\"\ns3_endpoint = {:?}\ns3_allow_http = true\nretain = 3\n",
            dir.path().join("data"),
            moto.endpoint
        ),
    )
    .unwrap();
    let env = [("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_REGION", "us-east-1")];
    let mut server = spawn_binary_with_env(&config, &env);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (painted, id) = rt.block_on(async {
        let api = pixelparty_bench::client::Api::new(([127, 0, 0, 1], http_port).into());
        let account = api.signup("painter", PASSWORD).await.unwrap();
        let mut conn = pixelparty_bench::client::Connection::connect(
            api.addr(),
            &account.token,
            pixelparty_bench::client::ConnectOptions::default(),
        )
        .await
        .unwrap();
        let mut painted = Vec::new();
        for i in 0..50u16 {
            let req = conn.paint(i, 2 * i, (i % 15 + 1) as u8).await.unwrap();
            conn.wait_for(ack_of(req)).await.unwrap();
            painted.push((i, 2 * i, (i % 15 + 1) as u8));
        }
        let admin = pixelparty_bench::client::Api::new(([127, 0, 0, 1], admin_port).into());
        let m = admin.ok("POST", "/backup", Some("s3-test-token"), None).await.unwrap();
        assert_eq!(m["backend"], "fjall");
        assert!(m["files"].as_array().unwrap().iter().all(|f| f["bytes"].as_u64().unwrap() > 0), "{m}");
        (painted, m["id"].as_str().unwrap().to_owned())
    });
    let _ = server.kill();
    let _ = server.wait();
    let data = dir.path().join("restored");
    let from = "s3://pixelparty-backups/node-a";
    let s3 = ["--s3-endpoint", &moto.endpoint, "--s3-allow-http"];
    let (ok, out) = pixelparty(&[&["restore", "--from", from, "--list"][..], &s3].concat(), &env);
    assert!(ok && out.contains(&id), "{out}");
    let (ok, out) =
        pixelparty(&[&["restore", "--from", from, "--data", data.to_str().unwrap()][..], &s3].concat(), &env);
    assert!(ok && out.contains("verified row for row") && out.contains(&id), "{out}");
    let restored = open(&data);
    let got = journal(&restored);
    assert_eq!(got.len(), painted.len());
    for (r, p) in got.iter().zip(&painted) {
        assert_eq!((r.x, r.y, r.colour), *p);
    }
}

/// In PostgreSQL mode a backup holds the canvas (geometry, every painted tile and its
/// sequence); restored, it is a data directory whose canvas is the server's.
#[tokio::test(flavor = "current_thread")]
async fn a_postgres_mode_backup_holds_the_canvas() {
    if !pixelparty_storage::testing::postgres_wanted() {
        return; // Run by its `_on_postgres` twin.
    }
    let t = start(|_| {});
    let a = t.user("alice").await;
    let mut conn = t.connect(&a).await;
    for i in 0..30u16 {
        let req = conn.paint(i * 5, 100 + i, (i % 15 + 1) as u8).await.unwrap();
        conn.wait_for(ack_of(req)).await.unwrap();
    }
    let m = t.admin_call("POST", "/backup", Value::Null).await;
    assert_eq!(m["backend"], "postgres");
    assert_eq!(m["canvas_seq"], 30);
    let files: Vec<&str> = m["files"].as_array().unwrap().iter().map(|f| f["keyspace"].as_str().unwrap()).collect();
    assert_eq!(files, ["meta", "tiles"]);
    let target = tempfile::tempdir().unwrap();
    let data = target.path().join("data");
    let backups = t.dir.path().join("backups");
    let (ok, out) =
        pixelparty(&["restore", "--from", backups.to_str().unwrap(), "--data", data.to_str().unwrap()], &[]);
    assert!(ok && out.contains("canvas only"), "{out}");
    let restored = open(&data);
    let g = restored.wait(|b| b.canvas_geometry()).unwrap().unwrap();
    let canvas = restored.wait(move |b| b.recover_canvas(g)).unwrap();
    assert_eq!(canvas.last_seq, 30);
    for i in 0..30u16 {
        let (x, y) = (u32::from(i * 5), u32::from(100 + i));
        let loc = g.locate(x, y).unwrap();
        let got = pixelparty_protocol::canvas::get_pixel(&canvas.tiles[loc.tile as usize], g.bpp(), loc.offset);
        assert_eq!(got, (i % 15 + 1) as u8, "pixel ({x}, {y})");
    }
}

#[test]
fn a_postgres_mode_backup_holds_the_canvas_on_postgres() {
    pixelparty_storage::testing::on_postgres(a_postgres_mode_backup_holds_the_canvas);
}
