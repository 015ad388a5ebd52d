//! The client library against a real server on 127.0.0.1:0: REST calls, a session over each
//! transport, a replica kept from the snapshot plus live batches, and resuming from cursors
//! after a dropped connection.
#![allow(clippy::unwrap_used, missing_docs)]

use pixelparty_bench::client::{Api, ConnectOptions, Connection, Event, Replica, TransportKind};
use pixelparty_gateway::config::Config;
use pixelparty_gateway::server::Server;

fn server(dir: &std::path::Path) -> Server {
    let mut c = Config::loopback(dir);
    c.canvas.width = 128;
    c.canvas.height = 128;
    c.canvas.tile_size = 32;
    c.canvas.cooldown_ms = 0;
    c.canvas.ring_per_tile = 8;
    c.auth.argon2_m_kib = 1024;
    c.auth.argon2_t = 1;
    Server::start(c).unwrap()
}

async fn settle(conn: &mut Connection, seq: u64, tiles: &[u32]) {
    // Read until the replica holds every listed tile at or past `seq` somewhere.
    loop {
        let r = conn.replica.as_ref().unwrap();
        if tiles.iter().all(|t| r.tile(*t).is_some()) && tiles.iter().any(|t| r.cursor(*t) >= seq) {
            return;
        }
        conn.recv().await.unwrap();
    }
}

#[tokio::test(flavor = "current_thread")]
async fn client_library_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path());
    let api = Api::new(s.http_addr);
    let bot = api.signup("bot_one", "a long password").await.unwrap();
    assert_eq!(api.login("bot_one", "a long password").await.unwrap().id, bot.id);
    assert_eq!(api.login("bot_one", "wrong password").await.unwrap_err().status(), Some(401));
    let room = api.create_room(&bot.token, "bots").await.unwrap();

    for transport in [TransportKind::Ws, TransportKind::Wt] {
        let options = ConnectOptions { transport, ..Default::default() };
        // A replica from the snapshot plus live updates.
        let mut viewer = Connection::connect(s.http_addr, &bot.token, options.clone()).await.unwrap();
        viewer.track(Replica::from_snapshot(api.snapshot().await.unwrap()));
        viewer.subscribe_all().await.unwrap();
        let mut painter = Connection::connect(s.http_addr, &bot.token, options.clone()).await.unwrap();
        let mut last = 0;
        for i in 0..20u16 {
            let req = painter.paint(i, 3, (i % 15 + 1) as u8).await.unwrap();
            last = painter
                .wait_for(|e| if let Event::Ack { req: r, value } = e { (*r == req).then_some(*value) } else { None })
                .await
                .unwrap();
        }
        settle(&mut viewer, last, &[0]).await;
        assert_eq!(viewer.replica.as_ref().unwrap().pixel(19, 3), Some(5));

        // Drop the viewer, paint more (past the 8-entry ring for tile 0), resume from cursors.
        let replica = viewer.replica.take().unwrap();
        drop(viewer);
        for i in 0..30u16 {
            let req = painter.paint(i, 4, 7).await.unwrap();
            last = painter
                .wait_for(|e| if let Event::Ack { req: r, value } = e { (*r == req).then_some(*value) } else { None })
                .await
                .unwrap();
        }
        let mut resumed = Connection::resume(s.http_addr, &bot.token, options.clone(), replica, None).await.unwrap();
        settle(&mut resumed, last, &[0]).await;
        let r = resumed.replica.as_ref().unwrap();
        assert_eq!(r.pixel(29, 4), Some(7));
        assert_eq!(r.pixel(19, 3), Some(5));

        // Chat through the library.
        let req = painter.join(room).await.unwrap();
        painter.wait_for(|e| matches!(e, Event::Ack { req: r, .. } if *r == req).then_some(())).await.unwrap();
        let req = painter.say(room, "beep").await.unwrap();
        let mut seen = Vec::new();
        painter.collect_until(&mut seen, |e| matches!(e, Event::Ack { req: r, .. } if *r == req)).await.unwrap();
        if !seen.iter().any(|e| matches!(e, Event::Room { text, .. } if text == "beep")) {
            painter.wait_for(|e| matches!(e, Event::Room { text, .. } if text == "beep").then_some(())).await.unwrap();
        }
        let req = painter.leave(room).await.unwrap();
        painter.wait_for(|e| matches!(e, Event::Ack { req: r, .. } if *r == req).then_some(())).await.unwrap();
    }
    s.shutdown();
}

/// The fan-out floor (`pixelparty-bench floor`) speaks enough of the protocol for the `paint`
/// scenario: with it, every paint reaches every subscriber and the replicas equal its snapshot.
#[test]
fn the_paint_scenario_runs_against_the_floor() {
    use pixelparty_bench::floor::{FloorArgs, run};
    use pixelparty_bench::peers::Target;
    use pixelparty_bench::scenario::paint::{self, PaintArgs};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let args = FloorArgs { width: 256, height: 256, tile: 64, tick_ms: 5, seconds: 30 };
    std::thread::spawn(move || run(listener, &args));
    let dir = tempfile::tempdir().unwrap();
    let common = pixelparty_bench::scenario::Common {
        target: Target::Floor,
        addr,
        server_pid: None,
        workers: 1,
        sources: 1,
        accounts: 1,
        results: dir.path().join("results.jsonl"),
        label: String::new(),
        transport: TransportKind::Ws,
    };
    let paint = PaintArgs { painters: 1, subscribers: 3, rate: 20.0, duration: 1.0, viewport: 1 };
    let record = paint::run(&common, &paint);
    let accepted = record["accepted"].as_u64().unwrap();
    assert!(accepted > 0, "{record}");
    assert_eq!(record["pixel_deliveries"].as_u64(), Some(3 * accepted), "every paint to every subscriber: {record}");
    assert_eq!(record["converged"], true, "{record}");
    assert_eq!(record["errors"], 0, "{record}");
}
