//! The node's feed: every commit of every node, applied here in sequence order. Sources:
//! this node's own commits (handed over directly), the other nodes' announcements (Redis
//! pub/sub: fast, at-most-once), and PostgreSQL, which has everything: every `poll_ms` the
//! feed reads the canvas's and the control log's heads, and a gap that stays open
//! `gap_hold_ms` is filled from the journal or the log. So a lost announcement, a dropped
//! subscription, a Redis restart or a pub/sub loop that went silent (a known failure of other
//! systems) all end the same way: PostgreSQL fills in, late by at most a poll.
//!
//! Canvas updates and control events are put in order here (one order each); room messages
//! go to their room's home shard, which orders each room (engine `feed`). The subscription
//! lives in a task of its own, so that a Redis outage never holds up the PostgreSQL path.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use pixelparty_engine::cluster::Sequencer;
use pixelparty_engine::now_ms;
use pixelparty_storage::PixelRecord;

use super::Cluster;
use super::control::Control;
use super::wire::{self, Event};
use crate::app::App;

/// Journal rows one gap fill reads.
const FILL_PAGE: usize = 10_000;

/// Control log entries one gap fill reads.
const CONTROL_PAGE: usize = 1000;

/// Housekeeping period: polls and gap fills.
const TURN: Duration = Duration::from_millis(20);

/// Announcements from the subscription queued for the feed before new ones are dropped
/// (PostgreSQL fills in).
const RECEIVED_QUEUE: usize = 16_384;

/// A control event in the log, and whether this node wrote it (then it is applied already).
type Logged = (bool, String);

struct Feed {
    cluster: Arc<Cluster>,
    app: Arc<App>,
    canvas: Sequencer<PixelRecord>,
    controls: Sequencer<Logged>,
    next_poll_ms: u64,
}

/// Runs the feed until the process ends.
pub(super) async fn run(
    cluster: Arc<Cluster>,
    app: Arc<App>,
    mut local: tokio::sync::mpsc::Receiver<Event>,
    applied: u64,
    controls_from: u64,
) {
    let (received_tx, mut received) = tokio::sync::mpsc::channel(RECEIVED_QUEUE);
    tokio::spawn(subscriber(cluster.clone(), received_tx));
    let mut feed = Feed {
        cluster,
        app,
        canvas: Sequencer::new(applied),
        controls: Sequencer::new(controls_from),
        next_poll_ms: 0,
    };
    let mut turn = tokio::time::interval(TURN);
    turn.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = local.recv() => match event {
                Some(event) => feed.on_event(true, event).await,
                None => return,
            },
            Some((node, event)) = received.recv() => {
                if node != feed.cluster.node {
                    feed.on_remote(node, event).await;
                }
            }
            _ = turn.tick() => feed.turn().await,
        }
    }
}

/// Holds the subscription: decodes what comes and queues it for the feed; reconnects after a
/// loss (the feed polls PostgreSQL meanwhile).
async fn subscriber(cluster: Arc<Cluster>, to_feed: tokio::sync::mpsc::Sender<(u64, Event)>) {
    loop {
        let connect = async {
            let mut pubsub = cluster.client.get_async_pubsub().await?;
            pubsub.subscribe(cluster.channel()).await?;
            Ok::<_, redis::RedisError>(pubsub.into_on_message())
        };
        match tokio::time::timeout(Duration::from_secs(1), connect).await {
            Ok(Ok(mut stream)) => {
                tracing::info!("cluster subscription up");
                while let Some(msg) = stream.next().await {
                    match wire::decode(msg.get_payload_bytes()) {
                        Ok(received) => {
                            if to_feed.try_send(received).is_err() {
                                cluster.stats.dropped.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(e) => {
                            cluster.stats.malformed.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(error = %e, "malformed cluster announcement");
                        }
                    }
                }
                tracing::warn!("cluster subscription lost; reconnecting (PostgreSQL fills in meanwhile)");
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "cluster subscription failed"),
            Err(_) => tracing::debug!("cluster subscription timed out"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

impl Feed {
    async fn on_remote(&mut self, node: u64, event: Event) {
        self.cluster.stats.received.fetch_add(1, Ordering::Relaxed);
        match event {
            Event::Presence { room, users } => self.app.engine.feed_presence(room, node, users).await,
            Event::Online(users) => self.app.online.remote(node, users, now_ms()),
            event => self.on_event(false, event).await,
        }
    }

    async fn on_event(&mut self, own: bool, event: Event) {
        let engine = &self.app.engine;
        match event {
            Event::Canvas(records) => self.offer(records).await,
            Event::Room { room, posts } => engine.feed_room(room, posts).await,
            Event::Control { id, event } => self.offer_controls(vec![(id, (own, event))]).await,
            Event::Direct { from, to, seq, frame } => engine.feed_direct(from, to, seq, frame).await,
            // Only ever from another node (see `on_remote`): this node's own lists are its own.
            Event::Presence { .. } | Event::Online(_) => {}
        }
    }

    async fn offer(&mut self, records: Vec<PixelRecord>) {
        let now = now_ms();
        let mut ready = Vec::new();
        for r in records {
            self.canvas.offer(r.seq, r, now, &mut ready);
        }
        let stats = &self.cluster.stats;
        stats.applied.store(self.canvas.applied(), Ordering::Relaxed);
        stats.held.store(self.canvas.held() as u64, Ordering::Relaxed);
        if !ready.is_empty() {
            let ready: Vec<PixelRecord> = ready.into_iter().map(|(_, r)| r).collect();
            self.app.engine.feed_pixels(&ready).await;
        }
    }

    async fn offer_controls(&mut self, events: Vec<(u64, Logged)>) {
        let now = now_ms();
        let mut ready = Vec::new();
        for (id, e) in events {
            self.controls.offer(id, e, now, &mut ready);
        }
        for (id, (own, json)) in ready {
            if own {
                continue;
            }
            match serde_json::from_str::<Control>(&json) {
                Ok(event) => {
                    // A failed read is logged by `apply`; the event is not retried (its
                    // sessions learn the change when they reconnect).
                    let _ = event.apply(&self.app).await;
                    self.cluster.stats.controls_applied.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(error = %e, id, "malformed control event"),
            }
        }
    }

    async fn turn(&mut self) {
        let now = now_ms();
        if now >= self.next_poll_ms {
            self.next_poll_ms = now + self.cluster.settings.poll_ms;
            let heads = self
                .cluster
                .store
                .call(|b| {
                    let (canvas, controls) = (b.canvas_head(), b.last_control_id());
                    Box::pin(async move { Ok((canvas.await?, controls.await?)) })
                })
                .await;
            match heads {
                Ok((canvas, controls)) => {
                    self.canvas.expect(canvas, now);
                    self.controls.expect(controls, now);
                }
                Err(e) => tracing::debug!(error = %e, "reading the heads failed"),
            }
        }
        let hold = self.cluster.settings.gap_hold_ms;
        if let Some(gap) = self.canvas.gap()
            && now >= gap.since_ms.saturating_add(hold)
        {
            self.fill(gap.from).await;
        }
        if let Some(gap) = self.controls.gap()
            && now >= gap.since_ms.saturating_add(hold)
        {
            self.fill_controls(gap.from).await;
        }
    }

    /// Reads the journal from the first missing sequence on.
    async fn fill(&mut self, from: u64) {
        let after = from - 1;
        let page = match self.cluster.store.call(move |b| b.journal_after(after, FILL_PAGE)).await {
            Ok(page) => page,
            Err(e) => {
                self.canvas.delay(now_ms());
                return tracing::debug!(error = %e, "filling the canvas gap failed");
            }
        };
        if page.first().is_none_or(|r| r.seq > from) {
            // Sequence `from` is missing from the journal. If the head is at or past it, it
            // was pruned (every sequence below the head is committed): only a node that fell
            // behind by more than the journal keeps sees this, and it rebuilds. If not, what
            // is held beyond the head came from no commit (another cluster on the same key
            // prefix?): it is dropped.
            match self.cluster.store.call(|b| b.canvas_head()).await {
                Ok(head) if head >= from => return self.rebuild(from).await,
                Ok(head) => {
                    tracing::warn!(from, head, "canvas updates announced beyond the head dropped");
                    self.canvas.reset(from - 1);
                    return;
                }
                Err(e) => {
                    self.canvas.delay(now_ms());
                    return tracing::debug!(error = %e, "reading the canvas head failed");
                }
            }
        }
        self.cluster.stats.filled.fetch_add(page.len() as u64, Ordering::Relaxed);
        self.offer(page).await;
    }

    /// Rebuilds the canvas from the store (tile snapshots plus the journal after them) when
    /// the journal no longer has what this node misses; the other nodes go on meanwhile.
    async fn rebuild(&mut self, from: u64) {
        let g = self.app.engine.shared().config.geometry;
        tracing::warn!(from, "canvas updates pruned before this node read them: rebuilding from snapshots");
        match self.cluster.store.call(move |b| b.recover_canvas(g)).await {
            Ok(c) => {
                self.cluster.stats.rebuilds.fetch_add(1, Ordering::Relaxed);
                let last = c.last_seq;
                self.app.engine.replace_tiles(c.tiles, c.tile_seqs).await;
                self.canvas.reset(last);
                self.canvas.expect(last, now_ms());
                self.cluster.stats.applied.store(last, Ordering::Relaxed);
            }
            Err(e) => {
                self.canvas.delay(now_ms());
                tracing::warn!(error = %e, "rebuilding the canvas failed; trying again after the hold");
            }
        }
    }

    /// Reads the control log from the first missing id on. A node so far behind that the log
    /// was pruned past it goes on from the oldest entry kept (the events in between concern
    /// sessions that have reconnected since, as far as anyone can tell).
    async fn fill_controls(&mut self, from: u64) {
        let page = match self.cluster.store.call(move |b| b.controls_after(from - 1, CONTROL_PAGE)).await {
            Ok(page) => page,
            Err(e) => {
                self.controls.delay(now_ms());
                return tracing::debug!(error = %e, "filling the control gap failed");
            }
        };
        if let Some(first) = page.first().filter(|r| r.id > from) {
            tracing::error!(from, first = first.id, "control events pruned before this node read them");
            self.controls.reset(first.id - 1);
        }
        let me = self.cluster.node;
        self.offer_controls(page.into_iter().map(|r| (r.id, (r.node == me, r.event))).collect()).await;
    }
}
