#!/usr/bin/env bash
# Provision PostgreSQL and Redis for development and tests.
#
#   eval "$(deploy/dev/provision.sh)"
#
# Prints only `export DATABASE_URL=...` and `export REDIS_URL=...` on stdout;
# everything else goes to stderr. For each service, in this order:
#   1. a server already listening at the URL's host:port is reused (for
#      Postgres, the URL's database is created if missing; nothing is dropped);
#   2. else a server from the installed binaries is started under .dev/ (or one
#      an earlier run started there is reused): on the URL's port when the
#      variable was set, on a free port (from 55432 / 56379) when it was not;
#   3. else, as root with apt-get, the Debian packages are installed and step 2
#      runs;
#   4. else it exits non-zero saying what to install.
# It never stops, restarts or reconfigures a server it did not start.
# deploy/dev/stop.sh stops what it started under .dev/.
set -euo pipefail

# stdout is reserved for the export lines; everything else goes to stderr.
exec 3>&1 1>&2

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEV="$ROOT/.dev"

DEFAULT_DATABASE_URL='postgres://postgres@127.0.0.1:5432/creditd?sslmode=disable'
DEFAULT_REDIS_URL='redis://127.0.0.1:6379/0'
PG_PORT_FROM=55432
REDIS_PORT_FROM=56379
PORT_SCAN=200

have() { # an executable program on PATH
	local p
	p=$(command -v "$1" 2>/dev/null) && [[ -f $p && -x $p ]]
}

log() { printf 'provision: %s\n' "$*" >&2; }
die() { printf 'provision: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------
# URL parsing: scheme://[userinfo@]host[:port][/path][?query]

parse_url() { # $1 url; sets U_SCHEME U_USERINFO U_HOST U_PORT U_PATH U_QUERY
	local rest hostport after
	[[ $1 == *://* ]] || return 1
	U_SCHEME=${1%%://*}
	rest=${1#*://}
	U_QUERY=
	if [[ $rest == *\?* ]]; then U_QUERY=${rest#*\?}; rest=${rest%%\?*}; fi
	U_PATH=
	if [[ $rest == */* ]]; then U_PATH=${rest#*/}; hostport=${rest%%/*}; else hostport=$rest; fi
	U_USERINFO=
	if [[ $hostport == *@* ]]; then U_USERINFO=${hostport%@*}; hostport=${hostport##*@}; fi
	U_PORT=
	if [[ $hostport == \[* ]]; then
		U_HOST=${hostport%%]*}; U_HOST=${U_HOST#\[}
		after=${hostport#*]}
		U_PORT=${after#:}
	elif [[ $hostport == *:* ]]; then
		U_HOST=${hostport%%:*}; U_PORT=${hostport#*:}
	else
		U_HOST=$hostport
	fi
	[[ -z $U_PORT || $U_PORT =~ ^[0-9]+$ ]] || return 1
	[[ $U_HOST != *,* ]] || return 1 # multi-host URLs are not handled here
	return 0
}

url_host() { # host as it goes into a URL
	if [[ $1 == *:* ]]; then printf '[%s]' "$1"; else printf '%s' "$1"; fi
}

build_url() { # scheme userinfo host port path query
	local u="$1://"
	[[ -n $2 ]] && u+="$2@"
	u+="$(url_host "$3"):$4"
	[[ -n $5 ]] && u+="/$5"
	[[ -n $6 ]] && u+="?$6"
	printf '%s' "$u"
}

urldecode() { local s=${1//+/ }; printf '%b' "${s//%/\\x}"; }

is_local_host() {
	case $1 in 127.0.0.1 | localhost | ::1 | '') return 0 ;; *) return 1 ;; esac
}

# ---------------------------------------------------------------------------
# Probes

tcp_open() { # host port
	local h=${1:-127.0.0.1}
	# shellcheck disable=SC2016 # $0 and $1 expand in the child bash
	timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$h" "$2" 2>/dev/null
}

port_free() { # port: nothing listens on it (loopback or any address)
	if tcp_open 127.0.0.1 "$1"; then return 1; fi
	if have ss && ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; then return 1; fi
	return 0
}

free_port() { # first free port from $1, skipping $2 (if given)
	local p=$1 end=$(($1 + PORT_SCAN))
	while ((p < end)); do
		if [[ $p != "${2:-}" ]] && port_free "$p"; then printf '%s' "$p"; return 0; fi
		p=$((p + 1))
	done
	die "no free port in $1..$((end - 1))"
}

# pg_client NAME: path of a working PostgreSQL client program, or nothing.
# Debian's /usr/bin/psql and pg_isready are wrappers that fail (exit 1, like
# "server rejecting") when no postgresql-client-N is installed: check them.
pg_client() {
	local c
	for c in "$(command -v "$1" 2>/dev/null)" $(printf '%s\n' /usr/lib/postgresql/*/bin/"$1" | sort -t/ -k5,5 -rn); do
		if [[ -x $c ]] && "$c" --version >/dev/null 2>&1; then printf '%s' "$c"; return 0; fi
	done
	return 0
}

pg_probe() { # host port -> 0 accepting, 1 starting/rejecting, 2 nothing there
	local rc=0
	if [[ -n $PG_ISREADY ]]; then
		"$PG_ISREADY" -q -t 3 -h "${1:-127.0.0.1}" -p "$2" || rc=$?
		case $rc in
		0) return 0 ;;
		1) tcp_open "$1" "$2" && return 1; return 2 ;;
		*) return 2 ;;
		esac
	fi
	tcp_open "$1" "$2" && return 0
	return 2
}

pg_reachable() { # host port; waits while a server is starting up
	local i rc
	for ((i = 0; i < 30; i++)); do
		rc=0; pg_probe "$1" "$2" || rc=$?
		case $rc in 0) return 0 ;; 2) return 1 ;; esac
		((i == 0)) && log "PostgreSQL at $1:$2 is not accepting connections yet; waiting"
		sleep 1
	done
	die "PostgreSQL at $1:$2 is listening but has not accepted connections for 30s"
}

redis_reachable() { # host port
	local out
	if have redis-cli; then
		out=$(timeout 3 redis-cli -h "${1:-127.0.0.1}" -p "$2" ping 2>&1) || true
		[[ $out == PONG ]] && return 0
		# Something answered but not PONG (e.g. NOAUTH): a server is there.
		if tcp_open "$1" "$2"; then
			log "Redis at $1:$2 answered PING with: ${out:-nothing} (reusing it anyway)"
			return 0
		fi
		return 1
	fi
	tcp_open "$1" "$2"
}

# ---------------------------------------------------------------------------
# Binaries, the postgres user, apt

PG_BINDIR=
find_pg_bindir() { # sets PG_BINDIR; prefers the version of an existing .dev/pg cluster
	local d want=
	[[ -f $DEV/pg/PG_VERSION ]] && want=$(<"$DEV/pg/PG_VERSION")
	if [[ -n $want && -x /usr/lib/postgresql/$want/bin/initdb ]]; then
		PG_BINDIR=/usr/lib/postgresql/$want/bin; return 0
	fi
	for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5,5 -rn); do
		if [[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]]; then PG_BINDIR=$d; return 0; fi
	done
	if have initdb && have pg_ctl; then
		PG_BINDIR=$(dirname "$(command -v pg_ctl)"); return 0
	fi
	return 1
}

find_redis_server() {
	if have redis-server; then command -v redis-server; return 0; fi
	[[ -f /usr/bin/redis-server && -x /usr/bin/redis-server ]] && echo /usr/bin/redis-server
}

APT_UPDATED=
apt_install() { # packages...
	if [[ $(id -u) -ne 0 ]] || ! have apt-get; then return 1; fi
	log "installing $* with apt-get"
	if [[ -z $APT_UPDATED ]]; then apt-get update >&2; APT_UPDATED=1; fi
	# 3>&- 9>&-: a server started by a package script must not inherit our
	# stdout pipe (the caller's $(...) would never end) or the lock.
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2 3>&- 9>&-
}

PG_RUNAS= # system user that runs initdb/pg_ctl when we are root
as_pg_owner() { # run a command as the owner of the local cluster
	if [[ -z $PG_RUNAS ]]; then "$@"; return; fi
	if have runuser; then
		(cd / && runuser -u "$PG_RUNAS" -- "$@")
	else
		local q; printf -v q '%q ' "$@"
		(cd / && su -s /bin/sh "$PG_RUNAS" -c "$q")
	fi
}

setup_pg_runas() {
	[[ $(id -u) -eq 0 ]] || return 0
	PG_RUNAS=postgres
	if ! id -u postgres >/dev/null 2>&1; then
		log "creating system user postgres (PostgreSQL refuses to run as root)"
		useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin postgres
	fi
}

# ---------------------------------------------------------------------------
# .dev/env: ports chosen by earlier runs

env_get() { # key
	[[ -f $DEV/env ]] || return 0
	sed -n "s/^$1=//p" "$DEV/env" | tail -n 1
}

env_set() { # key value
	mkdir -p "$DEV"
	touch "$DEV/env"
	{ grep -v "^$1=" "$DEV/env" || true; printf '%s=%s\n' "$1" "$2"; } >"$DEV/env.tmp"
	mv "$DEV/env.tmp" "$DEV/env"
}

# ---------------------------------------------------------------------------
# PostgreSQL

dev_pg_port() { # prints the port of a running .dev cluster
	local f=$DEV/pg/postmaster.pid pid port
	[[ -f $f ]] || return 1
	pid=$(sed -n 1p "$f"); port=$(sed -n 4p "$f")
	[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
	printf '%s' "$port"
}

# ensure_db maint_url db [local_superuser role]: create the database (and, on
# a .dev cluster, the role) if missing. Never drops anything.
ensure_db() {
	local maint=$1 db=$2 su_url=${3:-} role=${4:-} out
	if [[ -z $PSQL ]]; then
		log "psql not installed: cannot check that database \"$db\" exists (install postgresql-client)"
		return 0
	fi
	if [[ -n $su_url && -n $role ]]; then
		out=$("$PSQL" -X -q -At -v ON_ERROR_STOP=1 -d "$su_url" -v r="$role" <<<"SELECT 1 FROM pg_roles WHERE rolname = :'r'") ||
			die "cannot connect to the .dev PostgreSQL at $su_url"
		if [[ $out != 1 ]]; then
			log "creating role \"$role\" on the .dev PostgreSQL"
			"$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$su_url" -v r="$role" <<<'CREATE ROLE :"r" SUPERUSER LOGIN' >/dev/null
		fi
	fi
	out=$("$PSQL" -X -q -At -v ON_ERROR_STOP=1 -d "$maint" -v d="$db" <<<"SELECT 1 FROM pg_database WHERE datname = :'d'") ||
		die "PostgreSQL is listening but connecting with $maint failed (see above)"
	if [[ $out == 1 ]]; then return 0; fi
	log "creating database \"$db\""
	if ! "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$maint" -v d="$db" <<<'CREATE DATABASE :"d"' >/dev/null; then
		# Another run may have created it in the meantime.
		out=$("$PSQL" -X -q -At -d "$maint" -v d="$db" <<<"SELECT 1 FROM pg_database WHERE datname = :'d'") || true
		[[ $out == 1 ]] || die "could not create database \"$db\""
	fi
}

start_dev_pg() { # port listen_address superuser
	local port=$1 listen=$2 superuser=$3 sockdir="$DEV/sock" sockopt
	if ! find_pg_bindir; then
		apt_install postgresql postgresql-client || true
		PG_ISREADY=$(pg_client pg_isready); PSQL=$(pg_client psql)
		find_pg_bindir || die "no PostgreSQL is reachable at DATABASE_URL and its server programs (initdb, pg_ctl, postgres; looked for in /usr/lib/postgresql/*/bin and on PATH) are not installed. Install them (Debian/Ubuntu: apt-get install postgresql, or run this script as root to have it done), or start a PostgreSQL and set DATABASE_URL to it"
	fi
	setup_pg_runas
	mkdir -p "$DEV/pg" "$sockdir"
	touch "$DEV/pg.log"
	if [[ -n $PG_RUNAS ]]; then
		chmod go+x "$DEV"
		chown "$PG_RUNAS:" "$DEV/pg" "$sockdir" "$DEV/pg.log"
		as_pg_owner test -w "$DEV/pg" ||
			die "user $PG_RUNAS cannot write $DEV/pg: every folder above $DEV must be searchable by other users (chmod o+x)"
	fi
	chmod 700 "$DEV/pg"
	if [[ ! -f $DEV/pg/PG_VERSION ]]; then
		log "initdb $DEV/pg ($PG_BINDIR, superuser $superuser, trust auth)"
		if ! as_pg_owner "$PG_BINDIR/initdb" -D "$DEV/pg" -U "$superuser" --auth=trust --encoding=UTF8 --locale=C \
			>"$DEV/initdb.log" 2>&1; then
			cat "$DEV/initdb.log" >&2
			die "initdb failed (log: $DEV/initdb.log)"
		fi
		env_set PG_SUPERUSER "$superuser"
	fi
	# A socket path longer than ~107 bytes cannot be bound: go TCP-only then.
	if ((${#sockdir} + 20 < 107)); then sockopt="-k '$sockdir'"; else sockopt="-c unix_socket_directories="; fi
	# The server must not inherit our stdout pipe (fd 3) or the lock (fd 9).
	log "starting PostgreSQL on $listen:$port (data $DEV/pg, log $DEV/pg.log)"
	if ! as_pg_owner "$PG_BINDIR/pg_ctl" -D "$DEV/pg" -w -t 60 -l "$DEV/pg.log" \
		-o "-p $port $sockopt -c listen_addresses=$listen" start >&2 3>&- 9>&-; then
		tail -n 20 "$DEV/pg.log" >&2 || true
		die "PostgreSQL did not start (log: $DEV/pg.log)"
	fi
	env_set PG_PORT "$port"
}

provision_pg() {
	local explicit=0 url=${DATABASE_URL:-} port host user db maint running superuser listen
	if [[ -n $url ]]; then explicit=1; else url=$DEFAULT_DATABASE_URL; fi
	if ! parse_url "$url" || [[ $U_SCHEME != postgres && $U_SCHEME != postgresql ]]; then
		log "DATABASE_URL is not a postgres:// URL with one host; using it as given, unchecked"
		PG_URL=$url; return 0
	fi
	host=$U_HOST; port=${U_PORT:-5432}
	user=$(urldecode "${U_USERINFO%%:*}"); db=$(urldecode "$U_PATH")
	[[ -n $user ]] || user=$(id -un)
	[[ -n $db ]] || db=$user
	maint=$(build_url "$U_SCHEME" "$U_USERINFO" "${host:-127.0.0.1}" "$port" postgres "$U_QUERY")

	superuser=$(env_get PG_SUPERUSER); [[ -n $superuser ]] || superuser=postgres
	running=$(dev_pg_port) || running=''
	if pg_reachable "$host" "$port"; then
		if is_local_host "$host" && [[ $port == "$running" ]]; then
			log "reusing the .dev PostgreSQL on port $port"
			ensure_dev_db "$maint" "$db" "$user" "$superuser" "$host" "$port"
		else
			log "reusing PostgreSQL at ${host:-127.0.0.1}:$port"
			ensure_db "$maint" "$db"
		fi
		PG_URL=$url; return 0
	fi
	is_local_host "$host" || die "no PostgreSQL reachable at $host:$port (DATABASE_URL); a local one can only be started for 127.0.0.1/localhost"

	if [[ -n $running ]]; then
		if ((explicit)) && [[ $running != "$port" ]]; then
			die "the .dev PostgreSQL runs on port $running but DATABASE_URL names port $port: use port $running, or stop it with deploy/dev/stop.sh"
		fi
		port=$running
		pg_reachable 127.0.0.1 "$port" || die "the .dev PostgreSQL (port $port) is running but not reachable; see $DEV/pg.log"
		log "reusing the .dev PostgreSQL on port $port"
	else
		if ((!explicit)); then
			port=$(env_get PG_PORT)
			if [[ -z $port ]] || ! port_free "$port"; then port=$(free_port "$PG_PORT_FROM" "$(env_get REDIS_PORT)"); fi
		elif ! port_free "$port"; then
			die "port $port (DATABASE_URL) is in use by something that is not an accepting PostgreSQL"
		fi
		case $host in ::1) listen='::1' ;; localhost) listen=localhost ;; *) listen=127.0.0.1 ;; esac
		start_dev_pg "$port" "$listen" "$superuser"
	fi
	if ((!explicit)); then
		url=$(build_url postgres "$user" 127.0.0.1 "$port" "$db" sslmode=disable)
		maint=$(build_url postgres "$user" 127.0.0.1 "$port" postgres sslmode=disable)
	fi
	ensure_dev_db "$maint" "$db" "$user" "$superuser" "$host" "$port"
	PG_URL=$url
}

ensure_dev_db() { # maint db user superuser host port: on the .dev cluster, also create the role
	if [[ $3 != "$4" ]]; then
		ensure_db "$1" "$2" "$(build_url postgres "$4" "${5:-127.0.0.1}" "$6" postgres sslmode=disable)" "$3"
	else
		ensure_db "$1" "$2"
	fi
}

# ---------------------------------------------------------------------------
# Redis

dev_redis_port() { # prints the port of a running .dev redis-server
	local pid port cmd
	[[ -f $DEV/redis.pid ]] || return 1
	pid=$(<"$DEV/redis.pid"); port=$(env_get REDIS_PORT)
	[[ $pid =~ ^[0-9]+$ && -n $port ]] && kill -0 "$pid" 2>/dev/null || return 1
	cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	[[ $cmd == *redis-server*:"$port"* ]] || return 1
	printf '%s' "$port"
}

start_dev_redis() { # port bind
	local port=$1 bind=$2 bin i
	bin=$(find_redis_server) || true
	if [[ -z $bin ]]; then
		apt_install redis-server || true
		bin=$(find_redis_server) ||
			die "no Redis is reachable at REDIS_URL and redis-server is not installed. Install it (Debian/Ubuntu: apt-get install redis-server, or run this script as root to have it done), or start a Redis and set REDIS_URL to it"
	fi
	mkdir -p "$DEV"
	log "starting Redis on port $port (log $DEV/redis.log)"
	# The daemon must not inherit our stdout pipe (fd 3) or the lock (fd 9).
	# Append-only with fsync on every write: a usage task Redis acknowledged
	# survives a crash of Redis (jobstest.Server tests exactly that).
	# shellcheck disable=SC2086 # $bind holds one or two addresses
	"$bin" --port "$port" --bind $bind --daemonize yes --save "" --appendonly yes --appendfsync always \
		--dir "$DEV" --pidfile "$DEV/redis.pid" --logfile "$DEV/redis.log" >&2 3>&- 9>&- ||
		die "redis-server did not start (log: $DEV/redis.log)"
	env_set REDIS_PORT "$port"
	for ((i = 0; i < 50; i++)); do
		redis_reachable 127.0.0.1 "$port" 2>/dev/null && return 0
		sleep 0.2
	done
	tail -n 20 "$DEV/redis.log" >&2 || true
	die "Redis did not answer on port $port (log: $DEV/redis.log)"
}

provision_redis() {
	local explicit=0 url=${REDIS_URL:-} host port running bind
	if [[ -n $url ]]; then explicit=1; else url=$DEFAULT_REDIS_URL; fi
	if ! parse_url "$url" || [[ $U_SCHEME != redis && $U_SCHEME != rediss ]]; then
		log "REDIS_URL is not a redis:// URL; using it as given, unchecked"
		REDIS_OUT=$url; return 0
	fi
	host=$U_HOST; port=${U_PORT:-6379}
	if redis_reachable "$host" "$port"; then
		log "reusing Redis at ${host:-127.0.0.1}:$port"
		REDIS_OUT=$url; return 0
	fi
	is_local_host "$host" || die "no Redis reachable at $host:$port (REDIS_URL); a local one can only be started for 127.0.0.1/localhost"

	if running=$(dev_redis_port); then
		if ((explicit)) && [[ $running != "$port" ]]; then
			die "the .dev Redis runs on port $running but REDIS_URL names port $port: use port $running, or stop it with deploy/dev/stop.sh"
		fi
		port=$running
		log "reusing the .dev Redis on port $port"
	else
		if ((!explicit)); then
			port=$(env_get REDIS_PORT)
			if [[ -z $port ]] || ! port_free "$port"; then port=$(free_port "$REDIS_PORT_FROM" "$(env_get PG_PORT)"); fi
		elif ! port_free "$port"; then
			die "port $port (REDIS_URL) is in use by something that is not Redis"
		fi
		case $host in ::1) bind='::1' ;; localhost) bind='127.0.0.1 -::1' ;; *) bind=127.0.0.1 ;; esac
		start_dev_redis "$port" "$bind"
	fi
	if ((explicit)); then REDIS_OUT=$url; else REDIS_OUT="redis://127.0.0.1:$port/0"; fi
}

# ---------------------------------------------------------------------------

mkdir -p "$DEV"
# One provisioning at a time per checkout (two `make test` started together).
if have flock; then
	exec 9>"$DEV/lock"
	flock -w 300 9 || die "timed out waiting for another provision.sh ($DEV/lock)"
fi

PG_URL='' REDIS_OUT=''
PG_ISREADY=$(pg_client pg_isready)
PSQL=$(pg_client psql)
provision_pg
provision_redis

sq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
printf 'export DATABASE_URL=%s\nexport REDIS_URL=%s\n' "$(sq "$PG_URL")" "$(sq "$REDIS_OUT")" >&3
