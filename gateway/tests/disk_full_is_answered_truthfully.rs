//! The data directory on a volume that fills up (a real tmpfs of a few MiB): the server
//! answers every write truthfully and then exits for its supervisor to restart it.
//!
//! Defect: writes answered `internal: storage failure; not applied` came back after a
//! restart (so a client that retried made duplicates), and after space was freed the server
//! kept refusing until someone restarted it. Now: acknowledged writes are all there after the
//! restart, exactly once; writes answered `unavailable` are not; writes answered
//! `outcome_unknown` may be (that is what the code says); nothing is answered `internal`; the
//! process exits with status 75 once its store failed, and a restart with space serves again.
//!
//! Needs root (to mount a tmpfs); skipped with a reason otherwise, failed under `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use pixelparty_bench::client::{Api, ClientError, ConnectOptions, Connection, Event};
use pixelparty_protocol::ErrorCode;

const PASSWORD: &str = "correct horse battery";

/// Most messages sent before the volume must have filled.
const MAX_MESSAGES: usize = 40_000;

struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, size_mb: u32) -> Result<Self, String> {
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mb}m"), "tmpfs"])
            .arg(at)
            .status()
            .map_err(|e| format!("mount: {e}"))?;
        if !status.success() { Err(format!("mount -t tmpfs failed ({status})")) } else { Ok(Self(at.to_path_buf())) }
    }

    fn grow(&self, size_mb: u32) {
        let status =
            Command::new("mount").args(["-o", &format!("remount,size={size_mb}m")]).arg(&self.0).status().unwrap();
        assert!(status.success(), "remount");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Two distinct free loopback ports (both held until both are known).
fn free_ports() -> (u16, u16) {
    let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    (a.local_addr().unwrap().port(), b.local_addr().unwrap().port())
}

struct Node {
    child: Option<Child>,
    http: SocketAddr,
}

impl Node {
    fn start(config: &Path, http_port: u16) -> Self {
        let child = common::spawn_binary(config);
        Self { child: Some(child), http: SocketAddr::from(([127, 0, 0, 1], http_port)) }
    }

    /// Waits for the process to exit by itself (killing it after `limit`); its status code,
    /// `None` if it had to be killed.
    fn wait_exit(mut self, limit: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait().ok().and_then(|s| s.code()));
        });
        match rx.recv_timeout(limit) {
            Ok(code) => code,
            Err(_) => {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                None
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Outcome {
    Acked(u64),
    Unavailable,
    Unknown,
}

#[tokio::test(flavor = "current_thread")]
async fn a_full_disk_is_answered_truthfully_and_the_server_restarts_clean() {
    if pixelparty_storage::testing::postgres_wanted() {
        // About the embedded store's own volume: nothing to run on PostgreSQL.
        return eprintln!("not run: the embedded store only (PIXELPARTY_TEST_BACKEND=postgres)");
    }
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mount = match (is_root, Mount::tmpfs(&data, 12)) {
        (true, Ok(m)) => m,
        (_, Err(e)) => return skip(&format!("cannot mount a tmpfs: {e}")),
        (false, Ok(_)) => return skip("not root"),
    };
    let config = dir.path().join("pixelparty.toml");
    let (http_port, admin_port) = free_ports();
    std::fs::write(
        &config,
        format!(
            "[server]\nhttp = \"127.0.0.1:{}\"\nadmin = \"127.0.0.1:{}\"\nadmin_token = \"t\"\ndata_dir = \"{}\"\nshards = 1\n\n\
             [webtransport]\nenabled = false\n\n[canvas]\nwidth = 64\nheight = 64\ntile_size = 32\n\n\
             [limits]\nchat_interval_ms = 0\n\n[auth]\nargon2_m_kib = 1024\nlogin_per_ip_per_min = 1000\n\n\
             [storage]\ndurability = \"sync\"\ncache_mb = 1\n",
            http_port,
            admin_port,
            data.display()
        ),
    )
    .unwrap();

    let node = Node::start(&config, http_port);
    let api = Api::new(node.http);
    let alice = api.signup("alice", PASSWORD).await.unwrap();
    let room = api.create_room(&alice.token, "full").await.unwrap();
    let mut ws = Connection::connect(node.http, &alice.token, ConnectOptions::default()).await.unwrap();
    let req = ws.join(room).await.unwrap();
    ws.wait_for(|e| matches!(e, Event::Ack { req: r, .. } if *r == req).then_some(())).await.unwrap();

    // One message at a time, every answer recorded, until the server stops answering.
    let mut sent: Vec<(String, Outcome)> = Vec::new();
    let padding = "x".repeat(1800);
    for i in 0..MAX_MESSAGES {
        let text = format!("m{i} {padding}");
        let Ok(req) = ws.say(room, &text).await else { break };
        let answer = ws
            .wait_for(|e| match e {
                Event::Ack { req: r, value } if *r == req => Some(Ok(*value)),
                Event::Error { req: r, code, .. } if *r == req => Some(Err(*code)),
                _ => None,
            })
            .await;
        let outcome = match answer {
            Ok(Ok(seq)) => Outcome::Acked(seq),
            Ok(Err(ErrorCode::Unavailable)) => Outcome::Unavailable,
            Ok(Err(ErrorCode::OutcomeUnknown)) => Outcome::Unknown,
            Ok(Err(code)) => {
                panic!("message {i} answered {code:?}: only unavailable or outcome_unknown tell the truth")
            }
            Err(ClientError::Closed(_) | ClientError::Io(_) | ClientError::WebSocket(_)) => break,
            Err(e) => panic!("message {i}: {e}"),
        };
        sent.push((text, outcome));
    }
    let acked = sent.iter().filter(|s| matches!(s.1, Outcome::Acked(_))).count();
    let count = |o: Outcome| sent.iter().filter(|s| s.1 == o).count();
    eprintln!(
        "{} messages: {acked} acknowledged, {} unavailable, {} outcome unknown",
        sent.len(),
        count(Outcome::Unavailable),
        count(Outcome::Unknown)
    );
    assert!(acked > 0, "some messages were acknowledged before the disk filled");
    assert!(acked < sent.len(), "the full disk was answered (unavailable or outcome_unknown)");
    assert!(sent.len() < MAX_MESSAGES, "the volume never filled");
    // The store failed for good: the process stops for its supervisor (status 75).
    assert_eq!(node.wait_exit(Duration::from_secs(30)), Some(75), "exit status after a storage failure");

    // Space freed; a restart replays the journal and serves again.
    mount.grow(64);
    let node = Node::start(&config, http_port);
    let api = Api::new(node.http);
    let alice = api.login("alice", PASSWORD).await.unwrap();
    let mut stored: HashMap<String, u64> = HashMap::new();
    let mut before = u64::MAX;
    loop {
        let path = format!("/rooms/{room}/messages?limit=50&before={before}");
        let page = api.ok("GET", &path, Some(&alice.token), None).await.unwrap();
        let list = page["messages"].as_array().unwrap().clone();
        if list.is_empty() {
            break;
        }
        for m in &list {
            let (text, seq) = (m["text"].as_str().unwrap().to_owned(), m["seq"].as_u64().unwrap());
            assert!(stored.insert(text, seq).is_none(), "a message stored twice");
            before = before.min(seq);
        }
    }
    for (i, (text, outcome)) in sent.iter().enumerate() {
        match outcome {
            Outcome::Acked(seq) => assert_eq!(stored.get(text), Some(seq), "acknowledged message {i} lost"),
            Outcome::Unavailable => assert!(!stored.contains_key(text), "message {i} answered 'not applied' is stored"),
            Outcome::Unknown => {} // either is the truth
        }
    }
    // And it takes writes again.
    let mut ws = Connection::connect(node.http, &alice.token, ConnectOptions::default()).await.unwrap();
    let req = ws.join(room).await.unwrap();
    ws.wait_for(|e| matches!(e, Event::Ack { req: r, .. } if *r == req).then_some(())).await.unwrap();
    let req = ws.say(room, "back").await.unwrap();
    ws.wait_for(|e| matches!(e, Event::Ack { req: r, .. } if *r == req).then_some(())).await.unwrap();
    drop(node);
    drop(mount);
}

fn skip(reason: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true: this test needs to mount a tmpfs as root: {reason}");
    }
    eprintln!("skipped: {reason}");
}
