#!/usr/bin/env bash
# Acknowledged steps on each store beside what PostgreSQL itself does on the same machine:
# pgbench's single-row insert-and-commit at 1, 16 and 64 clients, then examples/store_load.rs
# (hot-work permits through the engine on sled, on PostgreSQL with one node and with two),
# on one throwaway server (.ci/postgres) with pg_stat_statements loaded.
#
#   bash benches/store-compare.sh [SECONDS_PER_LEVEL]     # default 10
#
# pgbench's clients and the engine's are closed loops alike: each waits for its commit before
# the next. Its p50/p99 come from its per-transaction log.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
clients=${CLIENTS:-1,16,64}

dir=$(mktemp -d)
trap 'bash .ci/postgres stop "$dir"' EXIT
eval "$(SOPFLOW_PG_OPTIONS='-c shared_preload_libraries=pg_stat_statements' bash .ci/postgres start "$dir")"
url=$SOPFLOW_TEST_POSTGRES
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

cargo build --release --locked -q --example store_load

psql -q "$url" -c "CREATE TABLE IF NOT EXISTS bench_steps (id bigserial PRIMARY KEY, instance text NOT NULL, seq bigint NOT NULL, body jsonb NOT NULL)"
cat >"$dir/step.sql" <<'SQL'
INSERT INTO bench_steps (instance, seq, body) VALUES ('hot_work_permit-' || :client_id, :client_id, '{"event": "approve", "actor": "li"}');
SQL
chmod -R a+rX "$dir"

echo "| pgbench: single-row insert-and-commit | clients | tx/s | p50 | p99 |"
echo "| --- | ---: | ---: | ---: | ---: |"
for n in ${clients//,/ }; do
  logs=$(mktemp -d)
  (cd "$logs" && "$bin/pgbench" -n -c "$n" -j "$(( n < 2 ? 1 : 2 ))" -T "$seconds" -f "$dir/step.sql" \
    --log --log-prefix=tx "$url" >"$logs/summary" 2>&1) || { cat "$logs/summary" >&2; exit 1; }
  tps=$(grep -Eo 'tps = [0-9.]+' "$logs/summary" | head -n 1 | cut -d' ' -f3)
  # Each log line: client, transaction, latency in µs, ...
  cat "$logs"/tx* | awk '{ print $3 }' | sort -n >"$logs/latencies"
  total=$(wc -l <"$logs/latencies")
  p50=$(sed -n "$(( (total * 50 + 99) / 100 ))p" "$logs/latencies")
  p99=$(sed -n "$(( (total * 99 + 99) / 100 ))p" "$logs/latencies")
  printf '| pgbench | %s | %.0f | %s µs | %s µs |\n' "$n" "$tps" "$p50" "$p99"
  rm -rf "$logs"
done
echo

./target/release/examples/store_load --postgres "$url" --seconds "$seconds" --clients "$clients"
