-- sopflow's store in PostgreSQL: the history log (the source of truth) and the records derived
-- from it. Every key column sorts byte by byte (COLLATE "C"), as sled's keys do, so that scans
-- and lists come in the same order on both stores.

-- What this database holds: `format` = sopflow-store-v1.
CREATE TABLE sopflow_meta (
    key   text COLLATE "C" PRIMARY KEY,
    value text NOT NULL
);

-- One row per step; the primary key makes the database itself refuse a second entry for one
-- (instance, seq). Entries are stored as the exact bytes that were hashed into the chain.
CREATE TABLE sopflow_log (
    instance text COLLATE "C" NOT NULL,
    seq      bigint NOT NULL CHECK (seq >= 0),
    entry    bytea NOT NULL,
    PRIMARY KEY (instance, seq)
);

-- The current snapshot of each instance, written in the same transaction as its entry, with the
-- columns the indexes are built on.
CREATE TABLE sopflow_instances (
    id           text COLLATE "C" PRIMARY KEY,
    workflow     text COLLATE "C" NOT NULL,
    state        text COLLATE "C" NOT NULL,
    business_key text COLLATE "C",
    number       text COLLATE "C",
    seq          bigint NOT NULL,
    snapshot     bytea NOT NULL
);
CREATE INDEX sopflow_instances_by_workflow ON sopflow_instances (workflow, id);
CREATE INDEX sopflow_instances_by_state ON sopflow_instances (state, workflow, id);
CREATE INDEX sopflow_instances_by_business_key ON sopflow_instances (business_key, id)
    WHERE business_key IS NOT NULL;
CREATE INDEX sopflow_instances_by_number ON sopflow_instances (number, id)
    WHERE number IS NOT NULL;

-- Pending timers (a hint: a timer fires only if its instance's snapshot still holds it). Due
-- times in milliseconds since the epoch.
CREATE TABLE sopflow_timers (
    instance text COLLATE "C" NOT NULL,
    timer    text COLLATE "C" NOT NULL,
    due      bigint NOT NULL,
    event    text NOT NULL,
    PRIMARY KEY (instance, timer)
);
CREATE INDEX sopflow_timers_by_due ON sopflow_timers (due, instance, timer);

-- The step each idempotency key was first used for; one row per key.
CREATE TABLE sopflow_idempotency_keys (
    key      text COLLATE "C" PRIMARY KEY,
    instance text COLLATE "C" NOT NULL,
    seq      bigint NOT NULL
);

-- The occurrence each schedule (`workflow/schedule`) last fired for, in milliseconds.
CREATE TABLE sopflow_schedule_marks (
    key text COLLATE "C" PRIMARY KEY,
    at  bigint NOT NULL
);

-- The last number given to an instance of each workflow (ids `workflow-1`, `-2`, ...).
CREATE TABLE sopflow_instance_numbers (
    workflow text COLLATE "C" PRIMARY KEY,
    last     bigint NOT NULL
);

-- The last `{seq}` of each workflow's readable numbers, per period (a year, or '').
CREATE TABLE sopflow_readable_sequences (
    workflow text COLLATE "C" NOT NULL,
    period   text COLLATE "C" NOT NULL,
    last     bigint NOT NULL,
    PRIMARY KEY (workflow, period)
);

-- Definition versions by hash: the exact sources (JSON of `StoredDefinition`).
CREATE TABLE sopflow_definitions (
    hash    text COLLATE "C" PRIMARY KEY,
    sources bytea NOT NULL
);
