//! Engine configuration: canvas shape, timing, and a bound for every queue and count.

use pixelparty_protocol::Geometry;
use pixelparty_protocol::limits::{MAX_HISTORY_PAGE, MAX_PIXELS_PER_FRAME};

/// The r/place 2017 palette (16 colours), the default at 4 bits per pixel.
pub const PLACE_2017_PALETTE: [[u8; 3]; 16] = [
    [0xFF, 0xFF, 0xFF],
    [0xE4, 0xE4, 0xE4],
    [0x88, 0x88, 0x88],
    [0x22, 0x22, 0x22],
    [0xFF, 0xA7, 0xD1],
    [0xE5, 0x00, 0x00],
    [0xE5, 0x95, 0x00],
    [0xA0, 0x6A, 0x42],
    [0xE5, 0xD9, 0x00],
    [0x94, 0xE0, 0x44],
    [0x02, 0xBE, 0x01],
    [0x00, 0xD3, 0xDD],
    [0x00, 0x83, 0xC7],
    [0x00, 0x00, 0xEA],
    [0xCF, 0x6E, 0xE4],
    [0x82, 0x00, 0x80],
];

/// Most shards (tile interest is a 64-bit mask of shards).
pub const MAX_SHARDS: usize = 64;

/// Everything the engine needs to know before it starts.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Number of shard threads.
    pub shards: usize,
    /// Canvas shape.
    pub geometry: Geometry,
    /// Palette (at most `2^bpp` colours).
    pub palette: Vec<[u8; 3]>,
    /// Paint cooldown per user in ms (0: none).
    pub cooldown_ms: u32,
    /// Whether ADMINs skip the cooldown.
    pub admin_exempt: bool,
    /// Fan-out and group-commit period in ms.
    pub tick_ms: u32,
    /// Recent updates kept per tile for resume.
    pub ring_per_tile: usize,
    /// Most tiles one session may subscribe to.
    pub max_subscriptions: usize,
    /// Most rooms one session may be in.
    pub max_rooms_per_session: usize,
    /// Most sessions in one room.
    pub max_room_members: usize,
    /// Bytes a session's outbound queue may hold before canvas updates are dropped for it.
    pub outbound_max_bytes: usize,
    /// Extra bytes allowed for chat and control frames above `outbound_max_bytes`; beyond
    /// it the session is closed as a slow consumer.
    pub outbound_reserve_bytes: usize,
    /// Messages per user per `chat_interval_ms` allowed in a burst (slow mode).
    pub chat_burst: u32,
    /// Minimum spacing of a user's messages in ms once the burst is used (0: no limit).
    pub chat_interval_ms: u32,
    /// Messages sent with the join of a room.
    pub history_on_join: usize,
    /// Capacity of each shard's inbox (messages from other shards).
    pub inbox_capacity: usize,
    /// Most messages a shard holds for a full inbox of another shard before it refuses new
    /// requests as overloaded.
    pub max_pending_outbound: usize,
    /// Most paints waiting for the next tick on one shard before new ones are refused.
    pub max_pending_paints: usize,
    /// Most tick batches in flight to storage per shard.
    pub max_ticks_in_flight: usize,
    /// A shard that has not come round its loop for this long with work waiting is reported.
    pub stall_threshold_ms: u64,
    /// Highest user id the engine keeps per-user state for (cooldown, slow mode).
    pub max_users: u32,
    /// Cluster mode: the link to the other nodes' shared services (`None`: one node).
    pub cluster: Option<std::sync::Arc<dyn crate::cluster::ClusterLink>>,
    /// Cluster mode: how long a gap in a room's sequence may stay open before it is filled
    /// from the store (the missing messages are usually still on their way from their node).
    pub gap_hold_ms: u64,
    /// Cluster mode: how often a room home asks the store for its rooms' newest sequences
    /// (announcements are at-most-once: this finds what was lost).
    pub room_check_ms: u64,
    /// Cluster mode: how often each node announces its members of each room (a node not
    /// heard from for three of these is taken as gone).
    pub presence_ms: u64,
}

impl EngineConfig {
    /// Defaults for a canvas of this shape: one shard per core, 5-minute cooldown.
    pub fn new(geometry: Geometry) -> Self {
        let palette = if geometry.bpp() == 4 {
            PLACE_2017_PALETTE.to_vec()
        } else {
            (0..geometry.colours())
                .map(|i| {
                    let v = (i * 255 / (geometry.colours() - 1).max(1)) as u8;
                    [v, v, v]
                })
                .collect()
        };
        Self {
            shards: std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_SHARDS),
            geometry,
            palette,
            cooldown_ms: 300_000,
            admin_exempt: true,
            tick_ms: 5,
            ring_per_tile: 1024,
            max_subscriptions: 4096,
            max_rooms_per_session: 32,
            max_room_members: 10_000,
            outbound_max_bytes: 1 << 20,
            outbound_reserve_bytes: 256 << 10,
            chat_burst: 5,
            chat_interval_ms: 1000,
            history_on_join: MAX_HISTORY_PAGE,
            inbox_capacity: 65_536,
            max_pending_outbound: 65_536,
            max_pending_paints: 262_144,
            max_ticks_in_flight: 16,
            stall_threshold_ms: 250,
            max_users: 16 << 20,
            cluster: None,
            gap_hold_ms: 50,
            room_check_ms: 1000,
            presence_ms: 2000,
        }
    }

    /// Checks the relationships between settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.shards == 0 || self.shards > MAX_SHARDS {
            return Err(ConfigError::new("shards", format!("must be 1..={MAX_SHARDS}")));
        }
        if self.palette.is_empty() || self.palette.len() > self.geometry.colours() {
            let rule = format!("must have 1..={} colours for {} bpp", self.geometry.colours(), self.geometry.bpp());
            return Err(ConfigError::new("palette", rule));
        }
        if self.tick_ms == 0 {
            return Err(ConfigError::new("tick_ms", "must be positive".into()));
        }
        if self.ring_per_tile > MAX_PIXELS_PER_FRAME {
            return Err(ConfigError::new("ring_per_tile", format!("must be at most {MAX_PIXELS_PER_FRAME}")));
        }
        if self.history_on_join > MAX_HISTORY_PAGE {
            return Err(ConfigError::new("history_on_join", format!("must be at most {MAX_HISTORY_PAGE}")));
        }
        let tile_frame = 16 + self.geometry.tile_bytes();
        if self.outbound_max_bytes < 2 * tile_frame {
            let rule = format!("must hold at least two whole tiles ({} bytes)", 2 * tile_frame);
            return Err(ConfigError::new("outbound_max_bytes", rule));
        }
        if self.inbox_capacity == 0 || self.max_ticks_in_flight == 0 || self.max_pending_paints == 0 {
            let rule = "must all be positive".into();
            return Err(ConfigError::new("inbox_capacity, max_ticks_in_flight, max_pending_paints", rule));
        }
        Ok(())
    }

    /// Most tile catch-ups one session has on their way from home shards: as many whole
    /// tiles as half its outbound queue holds (at least one). Further subscriptions wait
    /// their turn, so a client that subscribes to thousands of tiles at once is paced by its
    /// own reading instead of piling tile copies up in the server.
    pub fn catch_ups_per_session(&self) -> u16 {
        let tile_frame = 16 + self.geometry.tile_bytes();
        u16::try_from((self.outbound_max_bytes / 2 / tile_frame).max(1)).unwrap_or(u16::MAX)
    }
}

/// A setting that breaks a rule: which, and the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    setting: &'static str,
    rule: String,
}

impl ConfigError {
    /// `setting` breaks `rule`.
    pub fn new(setting: &'static str, rule: String) -> Self {
        Self { setting, rule }
    }

    /// The setting (or settings) at fault, as named in the configuration.
    pub fn setting(&self) -> &'static str {
        self.setting
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.setting, self.rule)
    }
}

impl std::error::Error for ConfigError {}
