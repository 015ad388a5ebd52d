//! A random sequence of operations against the store matches an in-memory model: the same
//! outcomes (ok, conflict, not found, invalid) and the same state afterwards, on both
//! backends (fjall, and PostgreSQL in a fresh database per case), through the `Store` seam.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};

use std::sync::Arc;

use pixelparty_storage::testing::{TestDb, temp_store};
use pixelparty_storage::{FriendOutcome, Removed, Role, StorageError, Store};
use proptest::prelude::*;

const NAMES: [&str; 6] = ["ann", "Ann", "bob", "cy", "dee", "BOB"];
const MAX_USER: u32 = 6;

#[derive(Debug, Clone)]
enum Op {
    CreateUser(usize),
    Request(u32, u32),
    Accept(u32, u32),
    Remove(u32, u32),
    Block(u32, u32),
    Unblock(u32, u32),
    Direct(u32, u32, u8),
    DeleteDirect(u32, u32, u64),
    CreateRoom(usize),
    Ban(u32),
    Unban(u32),
}

fn op() -> impl Strategy<Value = Op> {
    let u = || 1..=MAX_USER + 1;
    prop_oneof![
        (0..NAMES.len()).prop_map(Op::CreateUser),
        (u(), u()).prop_map(|(a, b)| Op::Request(a, b)),
        (u(), u()).prop_map(|(a, b)| Op::Accept(a, b)),
        (u(), u()).prop_map(|(a, b)| Op::Remove(a, b)),
        (u(), u()).prop_map(|(a, b)| Op::Block(a, b)),
        (u(), u()).prop_map(|(a, b)| Op::Unblock(a, b)),
        (u(), u(), any::<u8>()).prop_map(|(a, b, t)| Op::Direct(a, b, t)),
        (u(), u(), 0..6u64).prop_map(|(a, b, s)| Op::DeleteDirect(a, b, s)),
        (0..NAMES.len()).prop_map(Op::CreateRoom),
        u().prop_map(Op::Ban),
        u().prop_map(Op::Unban),
    ]
}

/// A modelled direct message: seq, author, text, deleted.
type Dm = (u64, u32, String, bool);

#[derive(Debug, Default)]
struct Model {
    users: Vec<String>,
    rooms: BTreeSet<String>,
    requests: BTreeSet<(u32, u32)>,
    friends: BTreeSet<(u32, u32)>,
    blocks: BTreeSet<(u32, u32)>,
    dms: BTreeMap<(u32, u32), Vec<Dm>>,
    bans: BTreeSet<u32>,
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Ok(String),
    Conflict,
    NotFound,
    Invalid,
}

fn outcome<T: std::fmt::Debug>(r: Result<T, StorageError>) -> Outcome {
    match r {
        Ok(v) => Outcome::Ok(format!("{v:?}")),
        Err(e) if e.is_conflict() => Outcome::Conflict,
        Err(e) if e.is_not_found() => Outcome::NotFound,
        Err(e) if e.is_invalid() => Outcome::Invalid,
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn ok<T: std::fmt::Debug>(v: T) -> Outcome {
    Outcome::Ok(format!("{v:?}"))
}

impl Model {
    fn exists(&self, u: u32) -> bool {
        u >= 1 && (u as usize) <= self.users.len()
    }
    fn pair(a: u32, b: u32) -> (u32, u32) {
        (a.min(b), a.max(b))
    }
    fn apply(&mut self, op: &Op) -> Outcome {
        match *op {
            Op::CreateUser(i) => {
                let name = NAMES[i];
                if self.users.iter().any(|n| n.to_lowercase() == name.to_lowercase()) {
                    return Outcome::Conflict;
                }
                self.users.push(name.to_owned());
                ok(self.users.len() as u32)
            }
            Op::Request(a, b) => {
                if a == b {
                    Outcome::Invalid
                } else if !self.exists(b) {
                    Outcome::NotFound
                } else if self.blocks.contains(&(a, b))
                    || self.blocks.contains(&(b, a))
                    || self.friends.contains(&(a, b))
                {
                    Outcome::Conflict
                } else if self.requests.remove(&(b, a)) {
                    self.friends.insert((a, b));
                    self.friends.insert((b, a));
                    ok(FriendOutcome::BecameFriends)
                } else if self.requests.contains(&(a, b)) {
                    Outcome::Conflict
                } else {
                    self.requests.insert((a, b));
                    ok(FriendOutcome::Requested)
                }
            }
            Op::Accept(me, from) => {
                if !self.requests.remove(&(from, me)) {
                    return Outcome::NotFound;
                }
                self.friends.insert((me, from));
                self.friends.insert((from, me));
                ok(())
            }
            Op::Remove(me, other) => {
                if self.friends.remove(&(me, other)) {
                    self.friends.remove(&(other, me));
                    ok(Removed::Friend)
                } else if self.requests.remove(&(other, me)) {
                    ok(Removed::Incoming)
                } else if self.requests.remove(&(me, other)) {
                    ok(Removed::Outgoing)
                } else {
                    Outcome::NotFound
                }
            }
            Op::Block(a, b) => {
                if a == b {
                    return Outcome::Invalid;
                }
                if !self.exists(b) {
                    return Outcome::NotFound;
                }
                // What ended, from the blocker's side (a block is a clean break).
                let ended = if self.friends.contains(&(a, b)) {
                    Some("Friend")
                } else if self.requests.contains(&(b, a)) {
                    Some("Incoming")
                } else if self.requests.contains(&(a, b)) {
                    Some("Outgoing")
                } else {
                    None
                };
                self.blocks.insert((a, b));
                for k in [(a, b), (b, a)] {
                    self.friends.remove(&k);
                    self.requests.remove(&k);
                }
                Outcome::Ok(ended.map_or_else(|| "None".to_owned(), |e| format!("Some({e})")))
            }
            Op::Unblock(a, b) => ok(self.blocks.remove(&(a, b))),
            Op::Direct(a, b, t) => {
                let text = format!("t{t}");
                let conv = self.dms.entry(Self::pair(a, b)).or_default();
                let seq = conv.len() as u64 + 1;
                conv.push((seq, a, text, false));
                ok(seq)
            }
            Op::DeleteDirect(a, b, seq) => {
                let Some(m) = self.dms.get_mut(&Self::pair(a, b)).and_then(|c| c.iter_mut().find(|m| m.0 == seq))
                else {
                    return Outcome::NotFound;
                };
                m.3 = true;
                m.2.clear();
                ok(seq)
            }
            Op::CreateRoom(i) => {
                if !self.rooms.insert(NAMES[i].to_lowercase()) {
                    return Outcome::Conflict;
                }
                ok(self.rooms.len() as u32)
            }
            Op::Ban(u) => {
                if !self.exists(u) {
                    return Outcome::NotFound;
                }
                self.bans.insert(u);
                ok(())
            }
            Op::Unban(u) => ok(self.bans.remove(&u)),
        }
    }
}

fn run(store: &Store, op: &Op) -> Outcome {
    let ban = pixelparty_storage::Ban { reason: "r".into(), by: 0, created_ms: 1, expires_ms: None };
    match *op {
        Op::CreateUser(i) => {
            outcome(store.wait(move |b| b.create_user(NAMES[i].into(), "h".into(), Role::User, 1)).map(|u| u.id))
        }
        Op::Request(a, c) => outcome(store.wait(move |b| b.request_friend(a, c, 1))),
        Op::Accept(a, c) => outcome(store.wait(move |b| b.accept_friend(a, c, 1))),
        Op::Remove(a, c) => outcome(store.wait(move |b| b.remove_relation(a, c))),
        Op::Block(a, c) => outcome(store.wait(move |b| b.block(a, c, 1))),
        Op::Unblock(a, c) => outcome(store.wait(move |b| b.unblock(a, c))),
        Op::Direct(a, c, t) => outcome(store.wait(move |b| b.append_direct(a, c, 1, format!("t{t}"))).map(|m| m.seq)),
        Op::DeleteDirect(a, c, s) => outcome(store.wait(move |b| b.delete_direct(a, c, s)).map(|m| m.seq)),
        Op::CreateRoom(i) => outcome(store.wait(move |b| b.create_room(NAMES[i].into(), 1, 1)).map(|r| r.id)),
        Op::Ban(u) => outcome(store.wait(move |b| b.ban_user(u, ban))),
        Op::Unban(u) => outcome(store.wait(move |b| b.unban_user(u, 0, 2))),
    }
}

/// Runs `ops` on `store` and on the model: the same outcome at every step, the same state
/// at the end.
fn check(store: &Store, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    for (i, op) in ops.iter().enumerate() {
        prop_assert_eq!(run(store, op), model.apply(op), "step {} {:?}", i, op);
    }
    for u in 1..=MAX_USER + 1 {
        let ids = |v: Vec<pixelparty_storage::Relation>| v.into_iter().map(|r| r.user).collect::<Vec<_>>();
        let expect = |set: &BTreeSet<(u32, u32)>, first: bool| {
            set.iter()
                .filter(|(a, b)| if first { *a == u } else { *b == u })
                .map(|(a, b)| if first { *b } else { *a })
                .collect::<Vec<_>>()
        };
        prop_assert_eq!(ids(store.wait(move |b| b.friends_of(u, 100)).unwrap()), expect(&model.friends, true));
        prop_assert_eq!(ids(store.wait(move |b| b.outgoing_requests(u, 100)).unwrap()), expect(&model.requests, true));
        prop_assert_eq!(ids(store.wait(move |b| b.incoming_requests(u, 100)).unwrap()), expect(&model.requests, false));
        prop_assert_eq!(ids(store.wait(move |b| b.blocks_of(u, 100)).unwrap()), expect(&model.blocks, true));
        prop_assert_eq!(store.wait(move |b| b.user_ban(u, 5)).unwrap().is_some(), model.bans.contains(&u));
        for v in 1..=MAX_USER + 1 {
            let history: Vec<(u64, u32, String)> = store
                .wait(move |b| b.direct_history(u, v, u64::MAX, 50, Arc::from([])))
                .unwrap()
                .into_iter()
                .map(|m| (m.seq, m.author, m.text))
                .collect();
            let expected: Vec<(u64, u32, String)> = model
                .dms
                .get(&Model::pair(u, v))
                .map(|c| c.iter().filter(|m| !m.3).map(|m| (m.0, m.1, m.2.clone())).collect())
                .unwrap_or_default();
            let keep = expected.len().saturating_sub(50);
            prop_assert_eq!(history, expected[keep..].to_vec());
        }
    }
    let names = store.wait(|b| b.users(0, 100)).unwrap().into_iter().map(|u| u.name).collect::<Vec<_>>();
    prop_assert_eq!(names, model.users.clone());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn fjall_matches_model(ops in proptest::collection::vec(op(), 1..80)) {
        let (_dir, store) = temp_store();
        check(&store, &ops)?;
    }
}

proptest! {
    // Each case creates a database: fewer cases, the same generator.
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn postgres_matches_model(ops in proptest::collection::vec(op(), 1..80)) {
        let Some(db) = TestDb::create_blocking() else { return Ok(()) };
        let store = Store::open(db.store_config("unused")).unwrap();
        check(&store, &ops)?;
    }
}
