//! The node's feed: every commit of every node, applied here in sequence order. Sources:
//! this node's own commits (handed over directly), the other nodes' announcements (Redis
//! pub/sub: fast, at-most-once), and PostgreSQL, which has everything: every `poll_ms` the
//! feed reads the canvas's head, and a gap that stays open `gap_hold_ms` is filled from the
//! journal. So a lost announcement, a dropped subscription, a Redis restart or a pub/sub loop
//! that went silent (a known failure of other systems) all end the same way: the journal
//! fills in, late by at most a poll.
//!
//! Canvas updates are put in order here (one global order); room messages go to their room's
//! home shard, which orders each room (engine `feed`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use pixelparty_engine::cluster::Sequencer;
use pixelparty_engine::now_ms;
use pixelparty_storage::PixelRecord;
use redis::aio::PubSubStream;

use super::Cluster;
use super::wire::{self, Event};
use crate::app::App;

/// Journal rows one gap fill reads.
const FILL_PAGE: usize = 10_000;

/// Housekeeping period: gaps, polls, pings, reconnects.
const TURN: Duration = Duration::from_millis(20);

/// How often Redis is pinged (and the epoch checked).
const PING_MS: u64 = 500;

struct Feed {
    cluster: Arc<Cluster>,
    app: Arc<App>,
    canvas: Sequencer<PixelRecord>,
    next_poll_ms: u64,
    next_ping_ms: u64,
    next_connect_ms: u64,
    pruned_warned: bool,
}

async fn next_message(stream: &mut Option<PubSubStream>) -> Option<redis::Msg> {
    match stream {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

/// Runs the feed until the process ends.
pub(super) async fn run(
    cluster: Arc<Cluster>,
    app: Arc<App>,
    mut local: tokio::sync::mpsc::Receiver<Event>,
    applied: u64,
) {
    let mut feed = Feed {
        cluster,
        app,
        canvas: Sequencer::new(applied),
        next_poll_ms: 0,
        next_ping_ms: 0,
        next_connect_ms: 0,
        pruned_warned: false,
    };
    let mut stream: Option<PubSubStream> = None;
    let mut turn = tokio::time::interval(TURN);
    turn.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = local.recv() => match event {
                Some(event) => feed.on_event(event).await,
                None => return,
            },
            msg = next_message(&mut stream) => match msg {
                Some(msg) => feed.on_message(&msg).await,
                None => {
                    tracing::warn!("cluster subscription lost; reconnecting (PostgreSQL fills in meanwhile)");
                    stream = None;
                    feed.next_poll_ms = 0;
                }
            },
            _ = turn.tick() => feed.turn(&mut stream).await,
        }
    }
}

impl Feed {
    async fn on_message(&mut self, msg: &redis::Msg) {
        match wire::decode(msg.get_payload_bytes()) {
            Ok((node, _)) if node == self.cluster.node => {}
            Ok((node, Event::Presence { room, users })) => {
                self.cluster.stats.received.fetch_add(1, Ordering::Relaxed);
                self.app.engine.feed_presence(room, node, users).await;
            }
            Ok((_, event)) => {
                self.cluster.stats.received.fetch_add(1, Ordering::Relaxed);
                self.on_event(event).await;
            }
            Err(e) => {
                self.cluster.stats.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "malformed cluster announcement");
            }
        }
    }

    async fn on_event(&mut self, event: Event) {
        let engine = &self.app.engine;
        match event {
            Event::Canvas(records) => self.offer(records).await,
            Event::Room { room, posts } => engine.feed_room(room, posts).await,
            Event::RoomDelete { room, seq } => engine.feed_room_delete(room, seq).await,
            Event::Direct { from, to, frame } => engine.feed_direct(from, to, frame).await,
            // Only ever from another node (see `on_message`): this node's own list is its own.
            Event::Presence { .. } => {}
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

    async fn turn(&mut self, stream: &mut Option<PubSubStream>) {
        let now = now_ms();
        if stream.is_none() && now >= self.next_connect_ms {
            self.next_connect_ms = now + 250;
            *stream = self.subscribe().await;
            if stream.is_some() {
                self.next_poll_ms = 0;
            }
        }
        if now >= self.next_ping_ms {
            self.next_ping_ms = now + PING_MS;
            if let Err(e) = self.cluster.ensure_epoch().await {
                tracing::debug!(error = %e, "cluster ping failed");
            }
        }
        if now >= self.next_poll_ms {
            self.next_poll_ms = now + self.cluster.settings.poll_ms;
            match self.cluster.store.call(|b| b.last_journal_seq()).await {
                Ok(head) => self.canvas.expect(head, now),
                Err(e) => tracing::debug!(error = %e, "reading the canvas head failed"),
            }
        }
        if let Some(gap) = self.canvas.gap()
            && now >= gap.since_ms.saturating_add(self.cluster.settings.gap_hold_ms)
        {
            self.fill(gap.from).await;
        }
    }

    async fn subscribe(&self) -> Option<PubSubStream> {
        let connect = async {
            let mut pubsub = self.cluster.client.get_async_pubsub().await?;
            pubsub.subscribe(self.cluster.channel()).await?;
            Ok::<_, redis::RedisError>(pubsub.into_on_message())
        };
        match tokio::time::timeout(Duration::from_secs(1), connect).await {
            Ok(Ok(stream)) => {
                tracing::info!("cluster subscription up");
                Some(stream)
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "cluster subscription failed");
                None
            }
            Err(_) => None,
        }
    }

    /// Reads the journal from the first missing sequence on.
    async fn fill(&mut self, from: u64) {
        let after = from - 1;
        let page = match self.cluster.store.call(move |b| b.journal_after(after, FILL_PAGE)).await {
            Ok(page) => page,
            Err(e) => return tracing::debug!(error = %e, "filling the canvas gap failed"),
        };
        if page.first().is_some_and(|r| r.seq > from) && !self.pruned_warned {
            // Only a node that fell behind by more than the journal keeps could see this.
            self.pruned_warned = true;
            tracing::error!(
                from,
                first = page.first().map(|r| r.seq),
                "canvas updates pruned before this node read them: restart it to rebuild"
            );
        }
        self.cluster.stats.filled.fetch_add(page.len() as u64, Ordering::Relaxed);
        self.offer(page).await;
    }
}
