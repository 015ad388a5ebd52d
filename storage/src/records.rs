//! The records the store keeps, and their value encodings.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::codec::{Dec, Enc};
use crate::error::Result;

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Ordinary user.
    User,
    /// Administrator.
    Admin,
}

impl Role {
    pub(crate) fn to_u8(self) -> u8 {
        match self {
            Self::User => 0,
            Self::Admin => 1,
        }
    }
    /// The role stored as `v`, if any.
    pub(crate) fn from_code(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::User),
            1 => Some(Self::Admin),
            _ => None,
        }
    }
    fn from_u8(d: &Dec<'_>, v: u8) -> Result<Self> {
        Self::from_code(v).ok_or_else(|| d.bad("unknown role"))
    }
}

/// An account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Dense id, from 1.
    pub id: u32,
    /// Name as chosen (unique case-insensitively).
    pub name: String,
    /// Role.
    pub role: Role,
    /// Password hash string (PHC format), opaque to the store.
    pub password_hash: String,
    /// Creation time, ms since the Unix epoch.
    pub created_ms: u64,
}

impl User {
    pub(crate) fn encode(&self) -> Vec<u8> {
        Enc::new()
            .u32(self.id)
            .str(&self.name)
            .u8(self.role.to_u8())
            .str(&self.password_hash)
            .u64(self.created_ms)
            .done()
    }
    pub(crate) fn decode(v: &[u8]) -> Result<Self> {
        let mut d = Dec::new("users", v)?;
        let id = d.u32()?;
        let name = d.str()?;
        let role = d.u8()?;
        let role = Role::from_u8(&d, role)?;
        let user = Self { id, name, role, password_hash: d.str()?, created_ms: d.u64()? };
        d.finish()?;
        Ok(user)
    }
}

/// A login session (the token itself is never stored, only its hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    /// The session's user.
    pub user: u32,
    /// Creation time.
    pub created_ms: u64,
    /// Expiry time.
    pub expires_ms: u64,
}

impl Session {
    pub(crate) fn encode(&self) -> Vec<u8> {
        Enc::new().u32(self.user).u64(self.created_ms).u64(self.expires_ms).done()
    }
    pub(crate) fn decode(v: &[u8]) -> Result<Self> {
        let mut d = Dec::new("sessions", v)?;
        let s = Self { user: d.u32()?, created_ms: d.u64()?, expires_ms: d.u64()? };
        d.finish()?;
        Ok(s)
    }
}

/// A ban (of a user or of an address range).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// Why (shown to the banned user).
    pub reason: String,
    /// Who banned (user id, 0 for the system or the admin endpoint).
    pub by: u32,
    /// When.
    pub created_ms: u64,
    /// Until when (`None`: permanent).
    pub expires_ms: Option<u64>,
}

impl Ban {
    /// The ban with its reason made plain (see [`crate::chat::plain`]).
    pub fn plain(self) -> Self {
        Self { reason: crate::chat::plain(&self.reason), ..self }
    }

    /// Whether the ban is in force at `now_ms`.
    pub fn active_at(&self, now_ms: u64) -> bool {
        self.expires_ms.is_none_or(|e| now_ms < e)
    }
    pub(crate) fn encode(&self) -> Vec<u8> {
        Enc::new().str(&self.reason).u32(self.by).u64(self.created_ms).opt_u64(self.expires_ms).done()
    }
    pub(crate) fn decode(keyspace: &'static str, v: &[u8]) -> Result<Self> {
        let mut d = Dec::new(keyspace, v)?;
        let b = Self { reason: d.str()?, by: d.u32()?, created_ms: d.u64()?, expires_ms: d.opt_u64()? };
        d.finish()?;
        Ok(b)
    }
}

/// A ban of an address range (a single address is a /32 or /128).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetBan {
    /// The range, normalised (host bits zero).
    pub net: IpNet,
    /// The ban.
    pub ban: Ban,
}

/// Key of a network ban: family (4 or 6), 16 address bytes (v4 mapped), prefix length.
pub(crate) fn net_key(net: &IpNet) -> Vec<u8> {
    let net = net.trunc();
    let (family, bytes) = match net.network() {
        IpAddr::V4(a) => (4u8, a.to_ipv6_mapped().octets()),
        IpAddr::V6(a) => (6u8, a.octets()),
    };
    let mut k = Vec::with_capacity(18);
    k.push(family);
    k.extend_from_slice(&bytes);
    k.push(net.prefix_len());
    k
}

/// Reads a network ban key back; `None` unless it is exactly what [`net_key`] writes (its
/// length, a v4-mapped address for family 4, host bits zero), so a corrupt key is reported
/// rather than read as some other range.
pub(crate) fn net_from_key(key: &[u8]) -> Option<IpNet> {
    let (&family, rest) = key.split_first()?;
    let (bytes, prefix): (&[u8; 16], &[u8; 1]) = (rest.first_chunk()?, rest.last_chunk()?);
    if rest.len() != 17 {
        return None;
    }
    let addr = std::net::Ipv6Addr::from(*bytes);
    let net = match family {
        4 => IpNet::new(IpAddr::V4(addr.to_ipv4_mapped()?), prefix[0]).ok()?,
        6 => IpNet::new(IpAddr::V6(addr), prefix[0]).ok()?,
        _ => return None,
    };
    (net == net.trunc()).then_some(net)
}

/// What a moderation action did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// A user was banned.
    BanUser,
    /// A user ban was lifted.
    UnbanUser,
    /// An address range was banned.
    BanNet,
    /// An address ban was lifted.
    UnbanNet,
    /// A user's role changed.
    SetRole,
    /// A user's sessions were ended.
    Kick,
    /// A user's pixels were rolled back.
    Rollback,
    /// A message was deleted by an administrator.
    DeleteMessage,
    /// An area of the canvas was rewound to an earlier moment.
    Rewind,
}

impl AuditAction {
    // Stored by position: new actions go at the end.
    const ALL: [Self; 9] = [
        Self::BanUser,
        Self::UnbanUser,
        Self::BanNet,
        Self::UnbanNet,
        Self::SetRole,
        Self::Kick,
        Self::Rollback,
        Self::DeleteMessage,
        Self::Rewind,
    ];

    /// The action whose [`AuditAction::name`] is `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            Self::BanUser => "ban_user",
            Self::UnbanUser => "unban_user",
            Self::BanNet => "ban_net",
            Self::UnbanNet => "unban_net",
            Self::SetRole => "set_role",
            Self::Kick => "kick",
            Self::Rollback => "rollback",
            Self::DeleteMessage => "delete_message",
            Self::Rewind => "rewind",
        }
    }
}

/// One entry of the moderation audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the log, from 1.
    pub seq: u64,
    /// When.
    pub time_ms: u64,
    /// Who did it (user id; 0 for the admin endpoint).
    pub actor: u32,
    /// What.
    pub action: AuditAction,
    /// To whom or what (user id or address range, as text).
    pub target: String,
    /// Free-form detail (reason, time range, role).
    pub detail: String,
}

impl AuditEntry {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let action = AuditAction::ALL.iter().position(|a| *a == self.action).unwrap_or(0) as u8;
        Enc::new().u64(self.time_ms).u32(self.actor).u8(action).str(&self.target).str(&self.detail).done()
    }
    pub(crate) fn decode(seq: u64, v: &[u8]) -> Result<Self> {
        let mut d = Dec::new("audit", v)?;
        let time_ms = d.u64()?;
        let actor = d.u32()?;
        let action = *AuditAction::ALL.get(d.u8()? as usize).ok_or_else(|| d.bad("unknown action"))?;
        let e = Self { seq, time_ms, actor, action, target: d.str()?, detail: d.str()? };
        d.finish()?;
        Ok(e)
    }
}

/// A chat room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    /// Dense id, from 1.
    pub id: u32,
    /// Unique name (case-insensitively).
    pub name: String,
    /// Creator.
    pub created_by: u32,
    /// Creation time.
    pub created_ms: u64,
}

impl Room {
    pub(crate) fn encode(&self) -> Vec<u8> {
        Enc::new().u32(self.id).str(&self.name).u32(self.created_by).u64(self.created_ms).done()
    }
    pub(crate) fn decode(v: &[u8]) -> Result<Self> {
        let mut d = Dec::new("rooms", v)?;
        let r = Self { id: d.u32()?, name: d.str()?, created_by: d.u32()?, created_ms: d.u64()? };
        d.finish()?;
        Ok(r)
    }
}

/// A stored chat message (room or direct). A deleted message keeps its slot (so sequences
/// stay gapless) but loses its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Sequence within its room or conversation, from 1.
    pub seq: u64,
    /// Author.
    pub author: u32,
    /// Posting time.
    pub time_ms: u64,
    /// Text (empty once deleted).
    pub text: String,
    /// Whether it was deleted.
    pub deleted: bool,
}

impl Message {
    pub(crate) fn encode(&self) -> Vec<u8> {
        Enc::new().u32(self.author).u64(self.time_ms).u8(u8::from(self.deleted)).str(&self.text).done()
    }
    pub(crate) fn decode(keyspace: &'static str, seq: u64, v: &[u8]) -> Result<Self> {
        let mut d = Dec::new(keyspace, v)?;
        let author = d.u32()?;
        let time_ms = d.u64()?;
        let deleted = match d.u8()? {
            0 => false,
            1 => true,
            _ => return Err(d.bad("bad deleted flag")),
        };
        let m = Self { seq, author, time_ms, deleted, text: d.str()? };
        d.finish()?;
        Ok(m)
    }
}

/// One accepted pixel update, as journaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelRecord {
    /// Global sequence.
    pub seq: u64,
    /// Column.
    pub x: u16,
    /// Row.
    pub y: u16,
    /// Palette index.
    pub colour: u8,
    /// Painter.
    pub user: u32,
    /// Time of the update.
    pub time_ms: u64,
}

impl PixelRecord {
    /// Set in `user` for a pixel restored by a rollback; the other bits name the user whose
    /// update was rolled back (user ids stay below it: see `Tx::create_user`).
    pub const ROLLBACK: u32 = 1 << 31;

    /// Who painted it, or `None` for a rollback's restore.
    pub fn painter(&self) -> Option<u32> {
        (self.user & Self::ROLLBACK == 0).then_some(self.user)
    }

    /// For a rollback's restore: the user whose update was rolled back.
    pub fn rolled_back(&self) -> Option<u32> {
        (self.user & Self::ROLLBACK != 0).then_some(self.user & !Self::ROLLBACK)
    }

    /// Bytes of one record inside a journal block.
    pub(crate) const BLOCK_LEN: usize = 25;

    pub(crate) fn write_block_entry(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.x.to_le_bytes());
        out.extend_from_slice(&self.y.to_le_bytes());
        out.push(self.colour);
        out.extend_from_slice(&self.user.to_le_bytes());
        out.extend_from_slice(&self.time_ms.to_le_bytes());
    }

    pub(crate) fn read_block_entry(d: &mut Dec<'_>) -> Result<Self> {
        Ok(Self { seq: d.u64()?, x: d.u16()?, y: d.u16()?, colour: d.u8()?, user: d.u32()?, time_ms: d.u64()? })
    }

    /// The value stored under the pixel index key: what the inspector shows.
    pub(crate) fn encode_index_value(&self) -> [u8; 14] {
        // The same bytes as `Enc::new().u8(colour).u32(user).u64(time)`, without a heap
        // allocation (this runs once per accepted pixel).
        let mut v = [0u8; 14];
        v[0] = crate::codec::VALUE_VERSION;
        v[1] = self.colour;
        v[2..6].copy_from_slice(&self.user.to_le_bytes());
        v[6..14].copy_from_slice(&self.time_ms.to_le_bytes());
        v
    }

    pub(crate) fn decode_index_value(x: u16, y: u16, seq: u64, v: &[u8]) -> Result<Self> {
        let mut d = Dec::new("pixel_index", v)?;
        let r = Self { seq, x, y, colour: d.u8()?, user: d.u32()?, time_ms: d.u64()? };
        d.finish()?;
        Ok(r)
    }
}

/// A direct-message conversation as listed for one of its users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conversation {
    /// The other user.
    pub peer: u32,
    /// Sequence of the newest message.
    pub last_seq: u64,
    /// Time of the newest message.
    pub last_ms: u64,
}

impl Conversation {
    /// The stored value: newest sequence and time (the peer is in the key, so the value is
    /// the same for both users).
    pub(crate) fn encode(&self) -> Vec<u8> {
        Enc::new().u64(self.last_seq).u64(self.last_ms).done()
    }

    pub(crate) fn decode(peer: u32, v: &[u8]) -> Result<Self> {
        let mut d = Dec::new("conversations", v)?;
        let c = Self { peer, last_seq: d.u64()?, last_ms: d.u64()? };
        d.finish()?;
        Ok(c)
    }
}

/// A friend request or friendship, as listed for one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relation {
    /// The other user.
    pub user: u32,
    /// When the request was made or the friendship began.
    pub since_ms: u64,
}

pub(crate) fn encode_time(t: u64) -> Vec<u8> {
    Enc::new().u64(t).done()
}

pub(crate) fn decode_time(keyspace: &'static str, v: &[u8]) -> Result<u64> {
    let mut d = Dec::new(keyspace, v)?;
    let t = d.u64()?;
    d.finish()?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let u =
            User { id: 3, name: "Zoë".into(), role: Role::Admin, password_hash: "$argon2id$x".into(), created_ms: 9 };
        assert_eq!(User::decode(&u.encode()).unwrap(), u);
        let m = Message { seq: 4, author: 3, time_ms: 5, text: "hi".into(), deleted: false };
        assert_eq!(Message::decode("messages", 4, &m.encode()).unwrap(), m);
        let p = PixelRecord { seq: 7, x: 1, y: 2, colour: 3, user: 4, time_ms: 5 };
        assert_eq!(PixelRecord::decode_index_value(1, 2, 7, &p.encode_index_value()).unwrap(), p);
        let mut block = vec![crate::codec::VALUE_VERSION];
        p.write_block_entry(&mut block);
        assert_eq!(block.len(), 1 + PixelRecord::BLOCK_LEN);
        assert_eq!(PixelRecord::read_block_entry(&mut Dec::new("journal", &block).unwrap()).unwrap(), p);
        let a = AuditEntry {
            seq: 1,
            time_ms: 2,
            actor: 3,
            action: AuditAction::Rollback,
            target: "u".into(),
            detail: "d".into(),
        };
        assert_eq!(AuditEntry::decode(1, &a.encode()).unwrap(), a);
        let b = Ban { reason: "spam".into(), by: 1, created_ms: 2, expires_ms: Some(3) };
        assert_eq!(Ban::decode("bans", &b.encode()).unwrap(), b);
        assert!(b.active_at(2) && !b.active_at(3));
    }

    #[test]
    fn corrupt_values_are_errors() {
        let mut v =
            User { id: 1, name: "a".into(), role: Role::User, password_hash: String::new(), created_ms: 0 }.encode();
        v[0] = 2;
        assert!(User::decode(&v).unwrap_err().is_corrupt());
        assert!(PixelRecord::decode_index_value(0, 0, 1, &[1, 2, 3]).unwrap_err().is_corrupt());
    }

    #[test]
    fn net_keys_round_trip() {
        for net in ["10.1.2.0/24", "192.168.1.7/32", "2001:db8::/32", "::1/128"] {
            let net: IpNet = net.parse().unwrap();
            assert_eq!(net_from_key(&net_key(&net)), Some(net));
        }
        let host: IpNet = "10.1.2.3/24".parse().unwrap();
        assert_eq!(net_from_key(&net_key(&host)), Some("10.1.2.0/24".parse().unwrap()));
        // Only canonical keys: no trailing byte, no host bits.
        let mut long = net_key(&host);
        long.push(0);
        assert_eq!(net_from_key(&long), None);
        let mut host_bits = net_key(&host);
        host_bits[16] = 3;
        assert_eq!(net_from_key(&host_bits), None);
    }
}
