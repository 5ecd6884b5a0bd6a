#!/usr/bin/env bash
# Stop the PostgreSQL and Redis that deploy/dev/provision.sh started under
# .dev/. Servers it merely reused are never touched. Data stays in .dev/
# (remove the folder to start from scratch).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEV="$ROOT/.dev"

log() { printf 'stop: %s\n' "$*" >&2; }

env_get() {
	[[ -f $DEV/env ]] || return 0
	sed -n "s/^$1=//p" "$DEV/env" | tail -n 1
}

stop_pg() {
	local pidfile=$DEV/pg/postmaster.pid pid pg_ctl owner ver
	[[ -f $pidfile ]] || { log "no .dev PostgreSQL running"; return 0; }
	pid=$(sed -n 1p "$pidfile")
	if ! [[ $pid =~ ^[0-9]+$ ]] || ! kill -0 "$pid" 2>/dev/null; then
		log "no .dev PostgreSQL running (stale $pidfile)"
		return 0
	fi
	ver=$(cat "$DEV/pg/PG_VERSION" 2>/dev/null || true)
	if [[ -n $ver && -x /usr/lib/postgresql/$ver/bin/pg_ctl ]]; then
		pg_ctl=/usr/lib/postgresql/$ver/bin/pg_ctl
	else
		pg_ctl=$(command -v pg_ctl) || { log "pg_ctl not found; stopping PostgreSQL (pid $pid) with SIGINT"; kill -INT "$pid"; return 0; }
	fi
	owner=$(stat -c %U "$DEV/pg")
	log "stopping the .dev PostgreSQL (pid $pid)"
	if [[ $(id -u) -eq 0 && $owner != root ]]; then
		(cd / && runuser -u "$owner" -- "$pg_ctl" -D "$DEV/pg" -m fast -w stop) >&2
	else
		"$pg_ctl" -D "$DEV/pg" -m fast -w stop >&2
	fi
}

stop_redis() {
	local pidfile=$DEV/redis.pid pid port cmd i
	[[ -f $pidfile ]] || { log "no .dev Redis running"; return 0; }
	pid=$(<"$pidfile"); port=$(env_get REDIS_PORT)
	cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
	# Only the redis-server that provision.sh started: right pid, right port.
	if ! [[ $pid =~ ^[0-9]+$ && -n $port && $cmd == *redis-server*:"$port"* ]]; then
		log "no .dev Redis running (stale $pidfile)"
		rm -f "$pidfile"
		return 0
	fi
	log "stopping the .dev Redis (pid $pid, port $port)"
	kill -TERM "$pid"
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	log "Redis (pid $pid) did not exit within 10s"
	return 1
}

rc=0
stop_pg || rc=1
stop_redis || rc=1
exit $rc
