//! The shard never waits on storage: with a store that delays every operation by 50 ms and
//! holds history reads until the test lets them through, a session whose room join waits for
//! its history page does not hold up anyone else on the same shard. Another session's pings
//! and paints are answered meanwhile, and the join then completes in order (ack, history,
//! then what the room published meanwhile). Ordering and liveness only: no clock is read.
//!
//! Defect: the shard read history (and author names) synchronously, so on a distant
//! database every session of the shard stalled for each join's round trips.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use pixelparty_bench::client::{Api, Event};
use pixelparty_gateway::config::Config;
use pixelparty_gateway::server::Server;
use pixelparty_storage::testing::Gated;
use pixelparty_storage::{Backend, Fjall, RuntimeConfig, Store};

#[tokio::test(flavor = "current_thread")]
async fn pings_and_paints_are_answered_while_a_join_waits_for_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::loopback(dir.path());
    config.server.shards = 1; // everyone on the same shard
    config.canvas.cooldown_ms = 0;
    config.limits.chat_interval_ms = 0;
    config.auth.signup_per_ip_per_hour = 1000;
    let fjall = Fjall::open(config.store().unwrap()).unwrap();
    let gated = Arc::new(Gated::new(Arc::new(fjall.clone())));
    let backend: Arc<dyn Backend> = gated.clone();
    let store = Store::with_backend(backend, Some(fjall), RuntimeConfig::default(), None)
        .unwrap()
        .delayed(Duration::from_millis(50));
    let server = Server::start_with(config, store).unwrap();
    let api = Api::new(server.http_addr);

    let (ann, bob) = (api.signup("ann", PASSWORD).await.unwrap(), api.signup("bob", PASSWORD).await.unwrap());
    let room = api.create_room(&ann.token, "lobby").await.unwrap();
    let connect = |token: String| {
        let addr = server.http_addr;
        async move {
            pixelparty_bench::client::Connection::connect(
                addr,
                &token,
                pixelparty_bench::client::ConnectOptions::default(),
            )
            .await
            .unwrap()
        }
    };
    let (mut a, mut b) = (connect(ann.token.clone()).await, connect(bob.token.clone()).await);

    // Bob is in the room first (his join's page waits at the gate too: let it pass).
    let b_join = b.join(room).await.unwrap();
    gated.let_through(1);
    b.wait_for(ack_of(b_join)).await.unwrap();
    b.subscribe_all().await.unwrap();

    // Ann joins: her history page is held at the gate.
    let a_join = a.join(room).await.unwrap();
    // Meanwhile Bob, on the same shard, is answered: a ping, a paint, a room message.
    b.ping(7).await.unwrap();
    b.wait_for(|e| matches!(e, Event::Pong { nonce: 7, .. }).then_some(())).await.unwrap();
    let paint = b.paint(3, 4, 5).await.unwrap();
    b.wait_for(ack_of(paint)).await.unwrap();
    let said = b.say(room, "while ann waits").await.unwrap();
    let seq = b.wait_for(ack_of(said)).await.unwrap();
    // Ann has heard nothing of her join yet: it is still waiting for its page.
    a.ping(1).await.unwrap();
    let mut before_pong = Vec::new();
    a.collect_until(&mut before_pong, |e| matches!(e, Event::Pong { nonce: 1, .. })).await.unwrap();
    assert!(
        !before_pong.iter().any(|e| matches!(e, Event::Ack { req, .. } if *req == a_join)),
        "the join cannot be acknowledged before its history page is read: {before_pong:?}"
    );

    // The page passes: ack, the history (which holds Bob's message, published before the
    // join took effect, or not), then the room in order, each message once.
    gated.let_through(1);
    a.wait_for(ack_of(a_join)).await.unwrap();
    let said2 = b.say(room, "after").await.unwrap();
    let seq2 = b.wait_for(ack_of(said2)).await.unwrap();
    let mut seen = Vec::new();
    while !seen.contains(&seq2) {
        match a.recv().await.unwrap() {
            Event::History { entries, .. } => seen.extend(entries.iter().map(|e| e.seq)),
            Event::Room { seq, .. } => seen.push(seq),
            _ => {}
        }
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in sequence order, each once: {seen:?}");
    assert!(seen.contains(&seq), "nothing lost: {seen:?}");
    server.shutdown();
}
