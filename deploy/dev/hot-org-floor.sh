#!/usr/bin/env bash
# The least Postgres can spend writing one org's usage, measured with pgbench
# on the ledger's own schema: each transaction locks the org's balance row,
# writes EVENTS_PER_TX usage rows (default 1,000) and their entries (generated
# by the server, so no client encodes or sends them), and updates the balance
# and the lot. That is what every transaction of that many events of one org
# must write, and the org's row lock makes its transactions take turns, so
# events/s here is a ceiling for one org at that transaction size. Prints
# events/s for 1 client and for 8 (8 only queue for the same lock).
# It creates its own database and drops it afterwards.
set -euo pipefail
: "${DATABASE_URL:?DATABASE_URL must be set (make bench sets it)}"
seconds=${SECONDS_PER_RUN:-20}
per_tx=${EVENTS_PER_TX:-1000}
creditd=${CREDITD:-go run ./cmd/creditd}
db="creditd_bench_floor_$$"
admin="$DATABASE_URL"
bench_url=$(printf '%s' "$DATABASE_URL" | sed -E "s#(postgres(ql)?://[^/]+)/[^?]*#\1/$db#")
psql "$admin" -qc "CREATE DATABASE $db"
tmp=$(mktemp -d)
cleanup() {
  status=$?
  if [ "$status" -ne 0 ] && [ -s "$tmp/err" ]; then tail -3 "$tmp/err" >&2; fi
  rm -rf "$tmp"
  psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
}
trap cleanup EXIT
DATABASE_URL="$bench_url" $creditd migrate >/dev/null
DATABASE_URL="$bench_url" $creditd org create hot --plan standard >/dev/null
DATABASE_URL="$bench_url" $creditd grant hot 1000000000 --source purchase --key seed >/dev/null
lot=$(psql "$bench_url" -Atc "SELECT lot_id FROM lots WHERE org_id = 'hot'")
# No "::" casts and no ":" before a letter: pgbench reads ":name" as a variable.
cat > "$tmp/batch.sql" <<SQL
BEGIN;
SELECT available FROM balances WHERE org_id = 'hot' FOR UPDATE;
INSERT INTO usage_events (org_id, event_id, status, amount, balance_after, request_hash, occurred_at, recorded_at, cycle_start)
SELECT 'hot', 'e' || txid_current() || '-' || g, 'applied', 250, 0, sha256(convert_to(CAST(g AS text), 'UTF8')), now(), now(), date_trunc('month', now())
FROM generate_series(1, $per_tx) g;
INSERT INTO entries (org_id, kind, amount, balance_after, lot_id, lot_delta, key, event_id, task_id, at)
SELECT 'hot', 'usage', -250, 0, $lot, -250, 'usage:' || 'e' || txid_current() || '-' || g, 'e' || txid_current() || '-' || g,
       'usage-batch:' || md5(CAST(txid_current() AS text)), now()
FROM generate_series(1, $per_tx) g;
UPDATE lots SET remaining = remaining - 250 * $per_tx WHERE org_id = 'hot' AND lot_id = $lot;
UPDATE balances SET available = available - 250 * $per_tx WHERE org_id = 'hot';
COMMIT;
SQL
for clients in 1 8; do
  tps=$(pgbench -n -M prepared -c "$clients" -j "$(( clients < 2 ? clients : 2 ))" -T "$seconds" -f "$tmp/batch.sql" "$bench_url" 2>"$tmp/err" |
        awk '/^tps = / {print $3}')
  echo "pgbench one org, $per_tx events per transaction ($clients clients, ${seconds}s):" \
    "$(awk -v t="$tps" -v n="$per_tx" 'BEGIN {printf "%d events/s (%.1f ms per transaction)", t * n, 1000 / t}')"
done
