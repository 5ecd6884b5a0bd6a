#!/usr/bin/env bash
# The machine's ceiling for one-row write transactions, measured with pgbench
# on the same PostgreSQL the ledger benchmarks use: each transaction updates one
# row of 10,000 (or, for "hot", always the same row) and inserts one row, which
# is the least a ledger write can do. Prints transactions/s for both shapes at
# each client count of CLIENTS: 16 as the one-transaction-per-event ledger
# benchmarks use, 64 as the group-commit benchmarks use.
# It creates its own database and drops it afterwards.
set -euo pipefail
: "${DATABASE_URL:?DATABASE_URL must be set (make bench sets it)}"
seconds=${SECONDS_PER_RUN:-20}
client_counts=${CLIENTS:-16 64}
db="creditd_bench_ceiling_$$"
admin="$DATABASE_URL"
bench_url=$(printf '%s' "$DATABASE_URL" | sed -E "s#(postgres(ql)?://[^/]+)/[^?]*#\1/$db#")
psql "$admin" -qc "CREATE DATABASE $db"
trap 'psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
psql "$bench_url" -q <<'SQL'
CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
INSERT INTO accounts SELECT g, 0 FROM generate_series(1, 10000) g;
CREATE TABLE history (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, account int NOT NULL, delta bigint NOT NULL, at timestamptz NOT NULL);
SQL
tmp=$(mktemp -d)
cat > "$tmp/spread.sql" <<'SQL'
\set aid random(1, 10000)
BEGIN;
UPDATE accounts SET balance = balance + 1 WHERE id = :aid;
INSERT INTO history (account, delta, at) VALUES (:aid, 1, now());
END;
SQL
sed 's/random(1, 10000)/1/' "$tmp/spread.sql" > "$tmp/hot.sql"
for clients in $client_counts; do
  for shape in spread hot; do
    tps=$(pgbench -n -M prepared -c "$clients" -j 2 -T "$seconds" -f "$tmp/$shape.sql" "$bench_url" 2>/dev/null |
          awk '/^tps = / {print int($3)}')
    echo "pgbench one-row transactions ($shape, $clients clients, ${seconds}s): $tps tps"
  done
done
rm -rf "$tmp"
