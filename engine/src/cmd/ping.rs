//! `Ping` → `Pong`.

use pixelparty_protocol::ServerFrame;
use pixelparty_protocol::client::Ping;
use pixelparty_protocol::server::Pong;

use crate::msg::ConnId;
use crate::shard::{Shard, encode};

impl Shard {
    pub(crate) fn on_ping(&mut self, id: ConnId, ping: Ping, now_ms: u64) {
        self.push_reliable(id, encode(&ServerFrame::Pong(Pong { nonce: ping.nonce, server_time_ms: now_ms })));
    }
}
