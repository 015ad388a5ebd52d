//! Control across nodes: what ends or changes live sessions (logout, bans of users and
//! address ranges, kicks, role changes, blocks, message deletions). The change itself is
//! already durable in the store when the event goes out; the event makes every node act on
//! its live sessions at once. [`App::control`] applies an event here, appends it to the
//! control log in PostgreSQL (gap-free ids, visible in order) and announces it; every other
//! node applies the log in id order through its feed, filling any gap from PostgreSQL, so an
//! announcement lost with Redis delays an event by at most a poll and never loses it.

use pixelparty_engine::Target;
use pixelparty_protocol::CloseReason;
use serde::{Deserialize, Serialize};

use super::Cluster;
use crate::app::App;

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
    /// A room message was deleted (its room's home tells the members, in order with the
    /// room's messages).
    RoomDeleted {
        /// The room.
        room: u32,
        /// The message.
        seq: u64,
    },
    /// A social change for the users it concerns (protocol version 3 `Social` frames).
    Social {
        /// Whose sessions are told (empty: every logged-in session).
        to: Vec<u32>,
        /// The `SocialKind` wire value.
        social: u8,
        /// The other user, or the room.
        id: u32,
        /// Their name, or the room's.
        name: String,
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
    /// Does what the event says on this node (an error: a read it needed failed).
    pub async fn apply(&self, app: &App) -> Result<(), pixelparty_storage::StorageError> {
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
                    Err(e) => {
                        tracing::error!(error = %e, "reloading the address bans failed");
                        return Err(e);
                    }
                }
            }
            Self::BlocksChanged { user } => {
                if let Err(e) = engine.blocks_changed(*user).await {
                    tracing::error!(error = %e, user, "reading a changed block list failed");
                    return Err(e);
                }
            }
            Self::RoomDeleted { room, seq } => engine.feed_room_delete(*room, *seq).await,
            Self::DirectDeleted { a, b, seq } => engine.direct_deleted(*a, *b, *seq).await,
            Self::Social { to, social, id, name } => {
                // An unknown kind (a newer node's) is skipped rather than guessed at.
                if let Some(kind) = pixelparty_protocol::SocialKind::from_wire(*social) {
                    engine.social((!to.is_empty()).then_some(to.as_slice()), kind, *id, name).await;
                }
            }
        }
        Ok(())
    }
}

impl Control {
    /// A social change told to the sessions of `to` (every logged-in session: empty).
    pub fn social(to: Vec<u32>, kind: pixelparty_protocol::SocialKind, id: u32, name: &str) -> Self {
        Self::Social { to, social: kind.to_wire(), id, name: name.to_owned() }
    }
}

/// The event as the control log stores it.
pub fn encode(event: &Control) -> String {
    // Serializing these plain enums cannot fail.
    serde_json::to_string(event).unwrap_or_default()
}

impl Cluster {
    /// Appends `event` to the control log (PostgreSQL) and announces it. An error means the
    /// other nodes were not told (the change itself is in the store; their sessions learn it
    /// when they reconnect).
    pub async fn publish_control(&self, event: &Control) -> Result<(), String> {
        let (node, json) = (self.node, encode(event));
        let logged = json.clone();
        let id = self
            .store
            .call(move |b| b.append_control(node, logged, pixelparty_engine::now_ms()))
            .await
            .map_err(|e| e.to_string())?;
        self.announce(vec![super::wire::Event::Control { id, event: json }]);
        Ok(())
    }
}
