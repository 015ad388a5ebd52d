//! Control across nodes: what ends or changes live sessions (logout, bans of users and
//! address ranges, kicks, role changes, blocks, direct message deletions). The change itself
//! is already durable in the store when the event goes out; the event makes every node act on
//! its live sessions at once. [`App::control`] applies an event here and appends it to a Redis
//! stream; every other node reads the stream from the last id it saw (`XREAD BLOCK`), so a
//! short disconnect loses nothing (the stream keeps the last [`STREAM_MAX`] events).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pixelparty_engine::Target;
use pixelparty_protocol::CloseReason;
use redis::streams::StreamReadReply;
use serde::{Deserialize, Serialize};

use super::Cluster;
use crate::app::App;

/// Events the control stream keeps (approximately: `MAXLEN ~`).
pub const STREAM_MAX: usize = 10_000;

/// Why sessions end (the close reasons control events use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Banned.
    Banned,
    /// Kicked (or their role changed).
    Kicked,
    /// Logged out.
    SessionRevoked,
}

impl From<Reason> for CloseReason {
    fn from(r: Reason) -> Self {
        match r {
            Reason::Banned => Self::Banned,
            Reason::Kicked => Self::Kicked,
            Reason::SessionRevoked => Self::SessionRevoked,
        }
    }
}

/// One control event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Control {
    /// End every session of a user.
    EndUser {
        /// User id.
        user: u32,
        /// Why.
        reason: Reason,
        /// Shown to them.
        message: String,
    },
    /// End the sessions of one login session (a logout).
    EndSession {
        /// User id.
        user: u32,
        /// Login session key.
        session: u64,
        /// Shown to them.
        message: String,
    },
    /// End every session from an address range (after its ban).
    EndNet {
        /// The range.
        net: ipnet::IpNet,
        /// Shown to them.
        message: String,
    },
    /// The address bans changed: read them again.
    NetBansChanged,
    /// A user's block list changed.
    BlocksChanged {
        /// The blocker.
        user: u32,
    },
    /// A direct message was deleted.
    DirectDeleted {
        /// One user.
        a: u32,
        /// The other.
        b: u32,
        /// The message.
        seq: u64,
    },
}

impl Control {
    /// Does what the event says on this node.
    pub async fn apply(&self, app: &App) {
        let engine = &app.engine;
        match self {
            Self::EndUser { user, reason, message } => engine.kick(*user, (*reason).into(), message).await,
            Self::EndSession { user, session, message } => {
                let target = Target::Session { user: *user, session: *session };
                engine.end_sessions(target, CloseReason::SessionRevoked, message).await;
            }
            Self::EndNet { net, message } => engine.end_sessions(Target::Net(*net), CloseReason::Banned, message).await,
            Self::NetBansChanged => {
                let ticket = app.bans.ticket();
                match app.store.call(|b| b.net_bans()).await {
                    Ok(list) => app.bans.set(ticket, list),
                    Err(e) => tracing::error!(error = %e, "reloading the address bans failed"),
                }
            }
            Self::BlocksChanged { user } => {
                if let Err(e) = engine.blocks_changed(*user).await {
                    tracing::error!(error = %e, user, "reading a changed block list failed");
                }
            }
            Self::DirectDeleted { a, b, seq } => engine.direct_deleted(*a, *b, *seq).await,
        }
    }
}

impl Cluster {
    /// Appends `event` to the control stream for the other nodes. An error means they were
    /// not told (the change is in the store; their sessions learn it when they reconnect).
    pub async fn publish_control(&self, event: &Control) -> Result<(), String> {
        let json = serde_json::to_string(event).map_err(|e| e.to_string())?;
        let mut conn = self.conn.clone();
        let r: redis::RedisResult<String> = redis::cmd("XADD")
            .arg(self.key("control"))
            .arg("MAXLEN")
            .arg("~")
            .arg(STREAM_MAX)
            .arg("*")
            .arg("node")
            .arg(self.node.to_string())
            .arg("event")
            .arg(json)
            .query_async(&mut conn)
            .await;
        self.noted(r).map(drop).map_err(|e| e.to_string())
    }
}

/// Reads the control stream until the process ends, on a connection of its own (`XREAD
/// BLOCK` holds it), applying the other nodes' events.
pub(super) async fn read(cluster: Arc<Cluster>, app: Arc<App>) {
    let key = cluster.key("control");
    let me = cluster.node.to_string();
    let mut last = "$".to_owned();
    loop {
        let mut conn = match cluster.client.get_multiplexed_async_connection().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::debug!(error = %e, "control stream: connecting failed");
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
        };
        if last == "$" {
            // Start after the newest event that exists now (events before this node started
            // concern sessions it never had).
            let newest: redis::RedisResult<redis::streams::StreamRangeReply> =
                redis::cmd("XREVRANGE").arg(&key).arg("+").arg("-").arg("COUNT").arg(1).query_async(&mut conn).await;
            last = match newest {
                Ok(r) => r.ids.first().map_or_else(|| "0-0".to_owned(), |e| e.id.clone()),
                Err(_) => continue,
            };
        }
        loop {
            let reply: redis::RedisResult<Option<StreamReadReply>> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(100)
                .arg("BLOCK")
                .arg(1000)
                .arg("STREAMS")
                .arg(&key)
                .arg(&last)
                .query_async(&mut conn)
                .await;
            let reply = match reply {
                Ok(reply) => reply,
                Err(e) => {
                    tracing::debug!(error = %e, "control stream: read failed; reconnecting");
                    break;
                }
            };
            for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
                last = entry.id.clone();
                let node: Option<String> = entry.get("node");
                if node.as_deref() == Some(me.as_str()) {
                    continue;
                }
                let Some(json) = entry.get::<String>("event") else { continue };
                match serde_json::from_str::<Control>(&json) {
                    Ok(event) => {
                        event.apply(&app).await;
                        cluster.stats.controls_applied.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => tracing::warn!(error = %e, "malformed control event"),
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
