-- Several processes (nodes) on one database: a due timer is claimed by one node for a lease
-- (`lease_until`, milliseconds since the epoch on the database's clock; `node` names the
-- claimant), and given to no other node until the lease runs out. A claim is not a firing: the
-- timer fires by the step that removes it, which the log's key lets only one node commit.
ALTER TABLE sopflow_timers ADD COLUMN lease_until bigint;
ALTER TABLE sopflow_timers ADD COLUMN node text;
