-- The outbox (`store::outbox`): what committed steps leave to be delivered, and how far delivery
-- got. Times in milliseconds since the epoch.

-- One row per committed step, written in the same transaction as its log entry: its notices
-- (JSON), until a router takes it.
CREATE TABLE sopflow_outbox (
    instance text COLLATE "C" NOT NULL,
    seq      bigint NOT NULL CHECK (seq >= 0),
    notices  bytea NOT NULL,
    PRIMARY KEY (instance, seq)
);

-- The feed: every routed step's position, 1, 2, 3... without gaps. `sopflow_feed_head` holds the
-- last position given; a router locks its one row for its whole transaction, so routers on
-- several nodes take turns and positions become visible in order.
CREATE TABLE sopflow_feed_head (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    last bigint NOT NULL
);
INSERT INTO sopflow_feed_head (one, last) VALUES (true, 0);
CREATE TABLE sopflow_feed (
    position bigint PRIMARY KEY,
    instance text COLLATE "C" NOT NULL,
    seq      bigint NOT NULL
);

-- Messages waiting to be sent, one per (channel, step, n): the record (JSON of `Delivery`), when
-- it may be tried next, and the lease of the node sending it.
CREATE TABLE sopflow_deliveries (
    channel     text COLLATE "C" NOT NULL,
    instance    text COLLATE "C" NOT NULL,
    seq         bigint NOT NULL,
    n           bigint NOT NULL,
    record      bytea NOT NULL,
    next_at     bigint NOT NULL,
    lease_until bigint,
    PRIMARY KEY (channel, instance, seq, n)
);

-- Messages given up on, until an operator revives them.
CREATE TABLE sopflow_dead_letters (
    channel  text COLLATE "C" NOT NULL,
    instance text COLLATE "C" NOT NULL,
    seq      bigint NOT NULL,
    n        bigint NOT NULL,
    record   bytea NOT NULL,
    PRIMARY KEY (channel, instance, seq, n)
);

-- People's notices: one row per recipient (`role:..`, `user:..`) and notice, and what each user
-- has read.
CREATE TABLE sopflow_inbox (
    recipient text COLLATE "C" NOT NULL,
    key       text COLLATE "C" NOT NULL,
    at        bigint NOT NULL,
    notice    bytea NOT NULL,
    PRIMARY KEY (recipient, key)
);
CREATE INDEX sopflow_inbox_newest ON sopflow_inbox (recipient, at DESC, key);
CREATE TABLE sopflow_inbox_read (
    user_id text COLLATE "C" NOT NULL,
    key     text COLLATE "C" NOT NULL,
    PRIMARY KEY (user_id, key)
);
