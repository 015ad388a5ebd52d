-- pixelparty schema, version 1. Every u32/u64 of the records is a bigint (never negative,
-- checked on read); times are milliseconds since the Unix epoch, as in the records.

-- Accounts. Ids are dense (max + 1 under a lock, like the fjall writer), never reused.
CREATE TABLE users (
    id            bigint PRIMARY KEY CHECK (id > 0),
    name          text NOT NULL,
    folded        text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    role          smallint NOT NULL,
    created_ms    bigint NOT NULL
);

-- Sessions, keyed by the SHA-256 of the token (the token never reaches the store).
CREATE TABLE sessions (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id    bigint NOT NULL,
    created_ms bigint NOT NULL,
    expires_ms bigint NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

-- The social graph: pending requests (from -> to), friendships (both directions stored, so
-- every list is one index range), blocks.
CREATE TABLE friend_requests (
    from_id  bigint NOT NULL,
    to_id    bigint NOT NULL,
    since_ms bigint NOT NULL,
    PRIMARY KEY (from_id, to_id)
);
CREATE INDEX friend_requests_by_to ON friend_requests (to_id, from_id);

CREATE TABLE friends (
    user_id   bigint NOT NULL,
    friend_id bigint NOT NULL,
    since_ms  bigint NOT NULL,
    PRIMARY KEY (user_id, friend_id)
);

CREATE TABLE blocks (
    blocker  bigint NOT NULL,
    blocked  bigint NOT NULL,
    since_ms bigint NOT NULL,
    PRIMARY KEY (blocker, blocked)
);

-- Moderation.
CREATE TABLE user_bans (
    user_id    bigint PRIMARY KEY,
    reason     text NOT NULL,
    by_id      bigint NOT NULL,
    created_ms bigint NOT NULL,
    expires_ms bigint
);

-- Address bans; `cidr` refuses host bits, and its order is the fjall key order (family, then
-- address, then prefix length).
CREATE TABLE net_bans (
    net        cidr PRIMARY KEY,
    reason     text NOT NULL,
    by_id      bigint NOT NULL,
    created_ms bigint NOT NULL,
    expires_ms bigint
);

CREATE TABLE audit (
    id      bigserial PRIMARY KEY,
    time_ms bigint NOT NULL,
    actor   bigint NOT NULL,
    action  text NOT NULL,
    target  text NOT NULL,
    detail  text NOT NULL
);

-- Rooms and messages. A deleted message keeps its row without its text.
CREATE TABLE rooms (
    id         bigint PRIMARY KEY CHECK (id > 0),
    name       text NOT NULL,
    folded     text NOT NULL UNIQUE,
    created_by bigint NOT NULL,
    created_ms bigint NOT NULL
);

CREATE TABLE room_messages (
    room    bigint NOT NULL,
    seq     bigint NOT NULL,
    author  bigint NOT NULL,
    time_ms bigint NOT NULL,
    text    text NOT NULL,
    deleted boolean NOT NULL,
    PRIMARY KEY (room, seq)
);

-- Direct messages of the pair (lo, hi), lo <= hi (`chat::conversation_pair`).
CREATE TABLE direct_messages (
    lo      bigint NOT NULL,
    hi      bigint NOT NULL,
    seq     bigint NOT NULL,
    author  bigint NOT NULL,
    time_ms bigint NOT NULL,
    text    text NOT NULL,
    deleted boolean NOT NULL,
    PRIMARY KEY (lo, hi, seq),
    CHECK (lo <= hi)
);

-- Each user's conversations: the newest message's sequence and time.
CREATE TABLE conversations (
    user_id  bigint NOT NULL,
    peer     bigint NOT NULL,
    last_seq bigint NOT NULL,
    last_ms  bigint NOT NULL,
    PRIMARY KEY (user_id, peer)
);

-- The canvas: its geometry (one row), the journal of accepted updates, tile snapshots.
CREATE TABLE canvas (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    width     bigint NOT NULL,
    height    bigint NOT NULL,
    bpp       smallint NOT NULL,
    tile_size integer NOT NULL
);

CREATE TABLE journal (
    seq     bigint PRIMARY KEY,
    x       integer NOT NULL,
    y       integer NOT NULL,
    colour  smallint NOT NULL,
    user_id bigint NOT NULL,
    time_ms bigint NOT NULL
);
-- The pixel inspector: one pixel's updates, newest first.
CREATE INDEX journal_by_pixel ON journal (x, y, seq);
-- Rollback: one user's updates in a time range.
CREATE INDEX journal_by_user_time ON journal (user_id, time_ms, seq);

CREATE TABLE tiles (
    tile bigint PRIMARY KEY,
    seq  bigint NOT NULL,
    data bytea NOT NULL
);
