-- pixelparty schema, version 2: cluster mode.

-- The control log: what ends or changes live sessions on every node (logouts, bans, kicks,
-- role changes, blocks, deletions), in one order. Ids are max + 1 under a lock held until
-- commit, so they become visible in order and a reader that saw id n can read every id
-- below it; old rows are pruned (a node behind by more than that restarts its reading).
CREATE TABLE control_log (
    id      bigint PRIMARY KEY CHECK (id > 0),
    node    bigint NOT NULL,
    time_ms bigint NOT NULL,
    event   text NOT NULL
);
