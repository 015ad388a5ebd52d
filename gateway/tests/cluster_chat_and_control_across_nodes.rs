//! Chat and control across three nodes, with Redis connections killed mid-stream (`CLIENT
//! KILL` of every node's subscription and command connections) and Redis restarted empty:
//! - three members of one room, each on its own node, post pipelined messages; every member
//!   receives every message exactly once, in sequence order, gap-free, with the text its
//!   acknowledgement's sequence names;
//! - a deletion on one node reaches the members on the others;
//! - direct messages cross nodes, in order and gap-free, across a killed subscription;
//! - a block made through another node is enforced for the blocker's live session (and
//!   stays so);
//! - a logout through one node ends the session live on another; a ban through a third
//!   node's admin endpoint ends the banned user's live session.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::PASSWORD;
use common::cluster::Shape;
use pixelparty_bench::client::{Api, ConnectOptions, Connection, Event};
use pixelparty_protocol::{CloseReason, ConvKind};
use serde_json::json;

const PER_MEMBER: usize = 30;
const LIMIT: Duration = Duration::from_secs(30);

async fn joined(node: std::net::SocketAddr, token: &str, room: u32) -> Connection {
    let mut ws = Connection::connect(node, token, ConnectOptions::default()).await.unwrap();
    let req = ws.join(room).await.unwrap();
    ws.wait_for(|e| matches!(e, Event::Ack { req: r, .. } if *r == req).then_some(())).await.unwrap();
    ws
}

/// Waits (bounded) for the first event `f` picks.
async fn expect<T>(ws: &mut Connection, what: &str, f: impl FnMut(&Event) -> Option<T>) -> T {
    tokio::time::timeout(LIMIT, ws.wait_for(f)).await.unwrap_or_else(|_| panic!("never saw {what}")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_deletes_directs_blocks_logouts_and_bans_cross_nodes() {
    let Some(mut cluster) = common::cluster::start(Shape { nodes: 3, cooldown_ms: 0, width: 64, tile: 32 }).await
    else {
        return;
    };
    let node: Vec<_> = cluster.nodes.iter().map(|n| n.http).collect();
    let api: Vec<Api> = node.iter().map(|a| Api::new(*a)).collect();
    let names = ["ann", "bob", "cat"];
    let mut accounts = Vec::new();
    for (i, name) in names.iter().enumerate() {
        accounts.push(api[i].signup(name, PASSWORD).await.unwrap());
    }
    let room = api[0].create_room(&accounts[0].token, "lobby").await.unwrap();
    let mut ws = Vec::new();
    for (i, a) in accounts.iter().enumerate() {
        ws.push(joined(node[i], &a.token, room).await);
    }

    // Everyone posts, pipelined; Redis connections are killed twice on the way.
    let mut sent: Vec<HashMap<u32, String>> = vec![HashMap::new(); 3];
    for k in 0..PER_MEMBER {
        if k == PER_MEMBER / 3 {
            assert!(cluster.redis.command("CLIENT KILL TYPE pubsub").starts_with(':'));
        }
        if k == PER_MEMBER / 2 {
            // Redis restarted empty: its announcements in flight are lost.
            cluster.redis.restart();
        }
        if k == 2 * PER_MEMBER / 3 {
            assert!(cluster.redis.command("CLIENT KILL TYPE normal").starts_with(':'));
        }
        for (i, w) in ws.iter_mut().enumerate() {
            let text = format!("{}-{k}", names[i]);
            let req = w.say(room, &text).await.unwrap();
            sent[i].insert(req, text);
        }
    }
    // Each member: its own acks, and every message of the room in order.
    let total = 3 * PER_MEMBER;
    let mut texts_by_seq: HashMap<u64, String> = HashMap::new();
    let mut received: Vec<Vec<(u64, String)>> = vec![Vec::new(); 3];
    for (i, w) in ws.iter_mut().enumerate() {
        let (mut acks, mut got) = (0, Vec::new());
        let done = tokio::time::timeout(LIMIT, async {
            while acks < PER_MEMBER || got.len() < total {
                match w.recv().await.unwrap() {
                    Event::Ack { req, value } => {
                        if let Some(text) = sent[i].remove(&req) {
                            acks += 1;
                            assert!(texts_by_seq.insert(value, text).is_none(), "sequence {value} acknowledged twice");
                        }
                    }
                    Event::Error { req, code, message, .. } => {
                        panic!("{}: request {req} refused: {code:?} {message}", names[i])
                    }
                    Event::Room { room: r, seq, text, .. } if r == room => got.push((seq, text)),
                    _ => {}
                }
            }
        })
        .await;
        assert!(done.is_ok(), "{} saw {} acks and {} of {total} messages", names[i], acks, got.len());
        received[i] = got;
    }
    for (i, got) in received.iter().enumerate() {
        let seqs: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, (1..=total as u64).collect::<Vec<_>>(), "{} got the room out of order or with gaps", names[i]);
        for (seq, text) in got {
            assert_eq!(texts_by_seq.get(seq), Some(text), "{}: message {seq} is not the one acknowledged", names[i]);
        }
    }

    // A deletion on ann's node reaches bob and cat on theirs.
    let (ann_seq, _) = received[0].iter().find(|(_, t)| t == "ann-0").unwrap().clone();
    let req = ws[0].delete(ConvKind::Room, room, ann_seq).await.unwrap();
    expect(&mut ws[0], "the deletion's ack", |e| matches!(e, Event::Ack { req: r, .. } if *r == req).then_some(()))
        .await;
    for i in [1, 2] {
        expect(&mut ws[i], "the tombstone", |e| {
            matches!(e, Event::Deleted { kind: ConvKind::Room, conv, seq } if *conv == room && *seq == ann_seq)
                .then_some(())
        })
        .await;
    }

    // A direct message from ann (node 0) to bob (node 1).
    let body = |name: &str| json!({ "username": name });
    api[0].ok("POST", "/users/add", Some(&accounts[0].token), Some(&body("bob"))).await.unwrap();
    api[1].ok("POST", "/users/add", Some(&accounts[1].token), Some(&body("ann"))).await.unwrap();
    let req = ws[0].dm(accounts[1].id, "psst").await.unwrap();
    expect(&mut ws[0], "the direct message's ack", |e| {
        matches!(e, Event::Ack { req: r, .. } if *r == req).then_some(())
    })
    .await;
    let text = expect(&mut ws[1], "the direct message", |e| match e {
        Event::Direct { from, text, .. } if *from == accounts[0].id => Some(text.clone()),
        _ => None,
    })
    .await;
    assert_eq!(text, "psst");
    // More, pipelined, with the subscriptions killed half way: bob gets every one, in order.
    let mut dm_reqs = Vec::new();
    for k in 0..20 {
        if k == 10 {
            assert!(cluster.redis.command("CLIENT KILL TYPE pubsub").starts_with(':'));
        }
        dm_reqs.push(ws[0].dm(accounts[1].id, &format!("dm-{k}")).await.unwrap());
    }
    let mut got = Vec::new();
    let done = tokio::time::timeout(LIMIT, async {
        while got.len() < 20 {
            if let Event::Direct { from, seq, text, .. } = ws[1].recv().await.unwrap()
                && from == accounts[0].id
            {
                got.push((seq, text));
            }
        }
    })
    .await;
    assert!(done.is_ok(), "bob got {} of 20 direct messages", got.len());
    let texts: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, (0..20).map(|k| format!("dm-{k}")).collect::<Vec<_>>(), "in order, none missing");
    assert!(got.windows(2).all(|w| w[1].0 == w[0].0 + 1), "sequences gap-free: {got:?}");

    // cat (session on node 2) blocks bob through node 0. Once the block reaches node 2, bob's
    // posts are not delivered to cat; ann's marker after each probe says when cat would have
    // had it (one room, one order).
    api[0].ok("POST", "/users/block", Some(&accounts[2].token), Some(&body("bob"))).await.unwrap();
    let mut hidden_in_a_row = 0;
    for probe in 0..100 {
        let bob_req = ws[1].say(room, &format!("probe-{probe}")).await.unwrap();
        expect(&mut ws[1], "the probe's ack", |e| {
            matches!(e, Event::Ack { req: r, .. } if *r == bob_req).then_some(())
        })
        .await;
        let marker = format!("marker-{probe}");
        ws[0].say(room, &marker).await.unwrap();
        let mut saw_probe = false;
        expect(&mut ws[2], "ann's marker", |e| match e {
            Event::Room { text, .. } if *text == format!("probe-{probe}") => {
                saw_probe = true;
                None
            }
            Event::Room { text, .. } if *text == marker => Some(()),
            _ => None,
        })
        .await;
        if saw_probe {
            assert_eq!(hidden_in_a_row, 0, "a block, once enforced, was lifted by itself");
            tokio::time::sleep(Duration::from_millis(20)).await; // Pacing between probes.
        } else {
            hidden_in_a_row += 1;
            if hidden_in_a_row == 5 {
                break;
            }
        }
    }
    assert_eq!(hidden_in_a_row, 5, "the block never reached cat's node");

    // ann logs out through node 1: her session on node 0 ends.
    api[1].ok("POST", "/logout", Some(&accounts[0].token), None).await.unwrap();
    let reason = expect(&mut ws[0], "ann's session ending", |e| match e {
        Event::Closing { reason, .. } => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, CloseReason::SessionRevoked);

    // bob is banned through node 2's admin endpoint: his session on node 1 ends.
    let admin = Api::new(cluster.nodes[2].admin);
    admin.ok("POST", "/bans/user", Some("t"), Some(&json!({ "username": "bob", "reason": "spam" }))).await.unwrap();
    let reason = expect(&mut ws[1], "bob's session ending", |e| match e {
        Event::Closing { reason, .. } => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, CloseReason::Banned);
}
