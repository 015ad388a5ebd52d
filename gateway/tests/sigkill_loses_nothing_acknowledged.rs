//! SIGKILL of the server binary while it writes, on the suite's backend (fjall in `sync`
//! mode, or PostgreSQL with `PIXELPARTY_TEST_BACKEND=postgres`): after a restart every paint
//! and every room message that was acknowledged is there, each message exactly once with its
//! text and sequence. Requests are pipelined so that some are in flight when the process dies;
//! their outcome is unknown to the client and not checked.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;

use common::{PASSWORD, spawn_binary};
use pixelparty_bench::client::{Api, ConnectOptions, Connection, Event};
use pixelparty_storage::testing::{TestDb, postgres_wanted};

/// Acknowledged writes before the kill.
const ACKED_BEFORE_KILL: usize = 300;
/// Requests kept in flight.
const WINDOW: usize = 32;
const WIDTH: u16 = 64;

#[tokio::test(flavor = "current_thread")]
async fn acknowledged_paints_and_messages_survive_a_sigkill() {
    let pg = if postgres_wanted() { Some(TestDb::create().await.expect("a PostgreSQL server")) } else { None };
    let dir = tempfile::tempdir().unwrap();
    let (http, admin) = {
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        (a.local_addr().unwrap().port(), b.local_addr().unwrap().port())
    };
    let storage = match &pg {
        Some(db) => format!("backend = \"postgres\"\npostgres_url = \"{}\"\npool_size = 4\n", db.url()),
        None => "durability = \"sync\"\ncache_mb = 1\n".to_owned(),
    };
    let config = dir.path().join("pixelparty.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nhttp = \"127.0.0.1:{http}\"\nadmin = \"127.0.0.1:{admin}\"\nadmin_token = \"t\"\ndata_dir = \"{}\"\nshards = 2\n\n\
             [webtransport]\nenabled = false\n\n[canvas]\nwidth = {WIDTH}\nheight = {WIDTH}\ntile_size = 32\ncooldown_ms = 0\n\n\
             [limits]\nchat_interval_ms = 0\n\n[auth]\nargon2_m_kib = 1024\nlogin_per_ip_per_min = 1000\n\n[storage]\n{storage}",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], http));

    let mut server = spawn_binary(&config);
    let api = Api::new(addr);
    let ann = api.signup("ann", PASSWORD).await.unwrap();
    let room = api.create_room(&ann.token, "crash").await.unwrap();
    let mut ws = Connection::connect(addr, &ann.token, ConnectOptions::default()).await.unwrap();
    let req = ws.join(room).await.unwrap();
    ws.wait_for(|e| matches!(e, Event::Ack { req: r, .. } if *r == req).then_some(())).await.unwrap();

    // Paint i goes to pixel i with colour 1 + i % 15; message i says "m{i}".
    let mut sent: HashMap<u32, (bool, usize)> = HashMap::new(); // req -> (is paint, i)
    let mut acked_paints: Vec<usize> = Vec::new();
    let mut acked_messages: Vec<(u64, usize)> = Vec::new();
    let mut next = 0usize;
    while acked_paints.len() + acked_messages.len() < ACKED_BEFORE_KILL {
        while sent.len() < WINDOW {
            let i = next;
            next += 1;
            let req = if i.is_multiple_of(2) {
                ws.paint((i as u16) % WIDTH, (i as u16) / WIDTH, 1 + (i % 15) as u8).await.unwrap()
            } else {
                ws.say(room, &format!("m{i}")).await.unwrap()
            };
            sent.insert(req, (i.is_multiple_of(2), i));
        }
        match ws.recv().await.unwrap() {
            Event::Ack { req, value } => match sent.remove(&req) {
                Some((true, i)) => acked_paints.push(i),
                Some((false, i)) => acked_messages.push((value, i)),
                None => {}
            },
            Event::Error { req, code, .. } => panic!("request {req} refused before the kill: {code:?}"),
            _ => {}
        }
    }
    // Requests still in flight now: the kill decides them.
    server.kill().unwrap();
    server.wait().unwrap();
    drop(ws);

    let mut server = spawn_binary(&config);
    // Every acknowledged message, once, with its text, in sequence order.
    let page = api
        .ok("GET", &format!("/rooms/{room}/messages?limit=50&before=18446744073709551615"), Some(&ann.token), None)
        .await
        .unwrap();
    let mut stored: Vec<(u64, String)> = Vec::new();
    let mut before = page["messages"][0]["seq"].as_u64().map_or(0, |s| s);
    for m in page["messages"].as_array().unwrap() {
        stored.push((m["seq"].as_u64().unwrap(), m["text"].as_str().unwrap().to_owned()));
    }
    while before > 1 {
        let p = api
            .ok("GET", &format!("/rooms/{room}/messages?limit=50&before={before}"), Some(&ann.token), None)
            .await
            .unwrap();
        let list = p["messages"].as_array().unwrap();
        if list.is_empty() {
            break;
        }
        before = list[0]["seq"].as_u64().unwrap();
        stored.extend(list.iter().map(|m| (m["seq"].as_u64().unwrap(), m["text"].as_str().unwrap().to_owned())));
    }
    stored.sort();
    let by_seq: HashMap<u64, &str> = stored.iter().map(|(s, t)| (*s, t.as_str())).collect();
    assert_eq!(by_seq.len(), stored.len(), "no sequence twice");
    for (seq, i) in &acked_messages {
        assert_eq!(by_seq.get(seq).copied(), Some(format!("m{i}").as_str()), "acknowledged message {i} (seq {seq})");
    }
    let texts: Vec<&str> = stored.iter().map(|(_, t)| t.as_str()).collect();
    for (_, i) in &acked_messages {
        let text = format!("m{i}");
        assert_eq!(texts.iter().filter(|t| **t == text).count(), 1, "message {i} exactly once");
    }
    // Every acknowledged paint, in the pixel inspector.
    for i in &acked_paints {
        let (x, y) = ((*i as u16) % WIDTH, (*i as u16) / WIDTH);
        let pixel = api.ok("GET", &format!("/canvas/pixel?x={x}&y={y}"), Some(&ann.token), None).await.unwrap();
        assert_eq!(pixel["colour"].as_u64(), Some(1 + (*i % 15) as u64), "acknowledged paint {i} at ({x}, {y})");
    }
    assert!(acked_paints.len() + acked_messages.len() >= ACKED_BEFORE_KILL);
    server.kill().unwrap();
    server.wait().unwrap();
}

// The same tests on PostgreSQL (a fresh database each; skipped without a server, failed
// under CI=true).
#[test]
fn acknowledged_paints_and_messages_survive_a_sigkill_on_postgres() {
    pixelparty_storage::testing::on_postgres(acknowledged_paints_and_messages_survive_a_sigkill);
}
