//! Presence across nodes: members of one room on three nodes see each other join (whatever
//! the node), `Who` on any node lists everyone, and when a node is SIGKILLed its members
//! leave the room for the others (within three presence rounds, bounded here).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::PASSWORD;
use common::cluster::Shape;
use pixelparty_bench::client::{Api, ConnectOptions, Connection, Event};
use pixelparty_protocol::PresenceKind;

const LIMIT: Duration = Duration::from_secs(30);

/// Follows a member's presence events (snapshots and changes) until its view is `want`.
async fn sees(ws: &mut Connection, room: u32, view: &mut BTreeSet<u32>, want: &[u32]) {
    let want: BTreeSet<u32> = want.iter().copied().collect();
    let done = tokio::time::timeout(LIMIT, async {
        while *view != want {
            if let Event::Presence { room: r, kind, users } = ws.recv().await.unwrap()
                && r == room
            {
                match kind {
                    PresenceKind::Snapshot => *view = users.iter().map(|(u, _)| *u).collect(),
                    PresenceKind::Joined => view.extend(users.iter().map(|(u, _)| *u)),
                    PresenceKind::Left => {
                        for (u, _) in &users {
                            view.remove(u);
                        }
                    }
                }
            }
        }
    })
    .await;
    assert!(done.is_ok(), "presence view {view:?}, never {want:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_on_every_node_see_each_other_and_a_dead_nodes_members_leave() {
    let Some(mut cluster) = common::cluster::start(Shape { nodes: 3, cooldown_ms: 0, width: 64, tile: 32 }).await
    else {
        return;
    };
    let node: Vec<_> = cluster.nodes.iter().map(|n| n.http).collect();
    let mut ids = Vec::new();
    let mut ws = Vec::new();
    let mut views = vec![BTreeSet::new(); 3];
    let first = Api::new(node[0]).signup("ann", PASSWORD).await.unwrap();
    let room = Api::new(node[0]).create_room(&first.token, "hall").await.unwrap();
    for (i, name) in ["ann", "bob", "cat"].iter().enumerate() {
        let account = if i == 0 { first.clone() } else { Api::new(node[i]).signup(name, PASSWORD).await.unwrap() };
        ids.push(account.id);
        let mut c = Connection::connect(node[i], &account.token, ConnectOptions::default()).await.unwrap();
        c.join(room).await.unwrap();
        ws.push(c);
    }
    for (i, w) in ws.iter_mut().enumerate() {
        sees(w, room, &mut views[i], &ids).await;
    }
    // Who, asked on bob's node, lists all three.
    let req = ws[1].who(room).await.unwrap();
    let listed = tokio::time::timeout(
        LIMIT,
        ws[1].wait_for(|e| match e {
            Event::Presence { room: r, kind: PresenceKind::Snapshot, users } if *r == room => {
                Some(users.iter().map(|(u, _)| *u).collect::<BTreeSet<u32>>())
            }
            Event::Error { req: r, code, .. } if *r == req => panic!("who refused: {code:?}"),
            _ => None,
        }),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(listed, ids.iter().copied().collect());

    cluster.nodes[2].kill();
    for (i, w) in ws.iter_mut().enumerate().take(2) {
        sees(w, room, &mut views[i], &ids[..2]).await;
    }
}

/// Social frames (protocol version 3) across nodes: a friend request and its acceptance made
/// through another node's HTTP reach the live session here (through the control log), a
/// friend's session opening on another node turns them online here, and that node's death
/// (SIGKILL, no goodbye) takes them offline within three presence rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn friends_on_other_nodes_hear_of_requests_and_online_status() {
    use pixelparty_protocol::SocialKind;
    let Some(mut cluster) = common::cluster::start(Shape { nodes: 2, cooldown_ms: 0, width: 64, tile: 32 }).await
    else {
        return;
    };
    let (n0, n1) = (Api::new(cluster.nodes[0].http), Api::new(cluster.nodes[1].http));
    let ann = n0.signup("ann", PASSWORD).await.unwrap();
    let bob = n1.signup("bob", PASSWORD).await.unwrap();
    let mut a = Connection::connect(cluster.nodes[0].http, &ann.token, ConnectOptions::default()).await.unwrap();
    let social = async |c: &mut Connection| {
        let next = c.wait_for(|e| if let Event::Social { kind, id, .. } = e { Some((*kind, *id)) } else { None });
        tokio::time::timeout(LIMIT, next).await.expect("a Social frame in time").unwrap()
    };
    let add = serde_json::json!({ "username": "ann" });
    n1.ok("POST", "/users/add", Some(&bob.token), Some(&add)).await.unwrap();
    assert_eq!(social(&mut a).await, (SocialKind::FriendRequest, bob.id));
    n0.ok("POST", "/users/add", Some(&ann.token), Some(&serde_json::json!({ "username": "bob" }))).await.unwrap();
    assert_eq!(social(&mut a).await, (SocialKind::FriendAdded, bob.id));

    let _b = Connection::connect(cluster.nodes[1].http, &bob.token, ConnectOptions::default()).await.unwrap();
    assert_eq!(social(&mut a).await, (SocialKind::Online, bob.id), "bob's session on the other node");
    let friends = n0.ok("GET", "/friends", Some(&ann.token), None).await.unwrap();
    assert_eq!(friends["friends"][0]["online"], true, "node 0 knows node 1's users");

    cluster.nodes[1].kill();
    assert_eq!(social(&mut a).await, (SocialKind::Offline, bob.id), "the silent node took bob with it");
    let friends = n0.ok("GET", "/friends", Some(&ann.token), None).await.unwrap();
    assert_eq!(friends["friends"][0]["online"], false);
}
