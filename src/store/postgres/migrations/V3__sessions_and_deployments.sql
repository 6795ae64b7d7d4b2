-- Console sessions, shared by every node: a sign-in works on each of them and outlives a
-- restart. Keyed by the SHA-256 of the session cookie (`sha256:<hex>`), never the cookie.
-- Times in milliseconds since the epoch.
CREATE TABLE sopflow_sessions (
    key       text COLLATE "C" PRIMARY KEY,
    user_id   text NOT NULL,
    csrf      text NOT NULL,
    created   bigint NOT NULL,
    last_used bigint NOT NULL
);
CREATE INDEX sopflow_sessions_by_last_used ON sopflow_sessions (last_used);

-- Every definition set `sopflow deploy` put in force, the newest (highest id) being the one
-- in force: its id (a hash of its files), each workflow's version hash, the files themselves
-- (JSON of `DeployedSet`), and who deployed it when. A deploy inserts one row in the same
-- transaction as the definition versions it stores, and notifies `sopflow_deployments`.
CREATE TABLE sopflow_deployments (
    id          bigserial PRIMARY KEY,
    set_id      text NOT NULL,
    versions    jsonb NOT NULL,
    deployed_by text NOT NULL,
    deployed_at bigint NOT NULL,
    sources     bytea NOT NULL
);
