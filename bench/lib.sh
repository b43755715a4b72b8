# shellcheck shell=bash
# shellcheck disable=SC2154 # bench_name, scratch, server_pin: the caller's
# bench/lib.sh: what bench/run, bench/duel and bench/statements share,
# sourced by each: the messages, free ports, CPU of process trees,
# starting and stopping a server, wrk's results, and a PostgreSQL cluster
# of their own. The caller sets bench_name (for messages), scratch (a folder
# of its own, removed at its exit), server_pin (the command that pins a
# server, or nothing) and, optionally, results (where the cluster's log is
# kept when it stops) and pg_pin (the command that pins the cluster's
# processes; by default server_pin's, beside the server).

die() {
	echo "$bench_name: error: $*" >&2
	exit 1
}

note() {
	echo "$bench_name: $*"
}

# Print a command line, quoted so it can be pasted into a shell.
show() {
	local out="+" a

	for a in "$@"; do
		out+=" $(printf '%q' "$a")"
	done
	echo "$out"
}

# A TCP port nobody listens on, below the ephemeral range so that wrk's
# outgoing connections cannot take it.
free_port() {
	local port tries

	for ((tries = 0; tries < 100; tries++)); do
		port=$((20000 + RANDOM % 10000))
		if command -v ss >/dev/null; then
			ss -Htan "( sport = :$port )" | grep -q . && continue
		else
			(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
		fi
		echo "$port"
		return 0
	done
	die "no free port found"
}

# PID and all its descendants (nginx: master and worker).
process_tree() {
	local pid=$1 child f

	echo "$pid"
	for f in /proc/"$pid"/task/*/children; do
		[[ -r $f ]] || continue
		for child in $(<"$f"); do
			process_tree "$child"
		done
	done
}

# utime + stime, in clock ticks, of a process tree (all threads included).
cpu_ticks() {
	local total=0 pid stat fields

	for pid in $(process_tree "$1"); do
		# Not $(<file): under set -e, bash 5.2 exits on a file gone
		# (a backend that ended) even here.
		{ read -r stat <"/proc/$pid/stat"; } 2>/dev/null || continue
		read -ra fields <<<"${stat##*) }"	# comm may hold spaces
		((total += fields[11] + fields[12])) || true
	done
	echo "$total"
}

# result FILE FIELD: a field of the BENCH_RESULT line signed-post.lua
# prints at the end of a wrk run.
result() {
	sed -n "s/^BENCH_RESULT .*\<$2=\([^ ]*\).*/\1/p" "$1"
}

# wrk_clean FILE: dies unless the wrk run FILE holds answered requests,
# all 2xx, without a socket error or a timeout.
wrk_clean() {
	local file=$1 errors

	grep -q '^BENCH_RESULT ' "$file" ||
		die "no BENCH_RESULT line in wrk's output ($file)"
	(($(result "$file" requests) > 0)) || die "no requests answered (see $file)"
	(($(result "$file" non2xx) == 0)) ||
		die "answers that were not 2xx (see $file)"
	errors=$(($(result "$file" connect_errors) + $(result "$file" read_errors) +
		$(result "$file" write_errors) + $(result "$file" timeouts)))
	((errors == 0)) || die "$errors socket errors and timeouts (see $file)"
}

# alive PID: running, not a zombie (kill -0 passes a child that exited
# and was not waited for yet).
alive() {
	local stat

	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

# wait_listening NAME PID PORT LOG: until PID accepts connections on
# 127.0.0.1:PORT, for 10 s at most; dies with its log if it exits first.
wait_listening() {
	local name=$1 pid=$2 port=$3 log=$4 i

	for ((i = 0; i < 100; i++)); do
		if ! alive "$pid"; then
			cat "$log" >&2
			die "$name exited at startup (log above)"
		fi
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	cat "$log" >&2
	die "$name does not accept connections on 127.0.0.1:$port after 10 s"
}

# stop_pid PID: SIGTERM, then SIGKILL if it is still there after 5 s.
stop_pid() {
	local i

	kill -TERM "$1" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		alive "$1" || break
		sleep 0.1
	done
	if alive "$1"; then
		note "server $1 ignores SIGTERM: SIGKILL"
		kill -KILL "$1" 2>/dev/null || true
	fi
	wait "$1" 2>/dev/null || true
}

# ---------------------------------------------------------------- PostgreSQL

# A cluster of its own in the scratch folder, on a free port, listening on
# 127.0.0.1 only; as the postgres user when we are root (initdb and the
# server refuse root). Durable as a production one: fsync and synchronous
# commits on, as SQLite's inbox syncs every acknowledged delivery.
pg_bin=
pg_pin=()
pg_port=
pg_pid=
as_pg=()

pg_run() {
	"${as_pg[@]}" "$@"
}

start_postgres() {
	local d

	for d in /usr/lib/postgresql/*/bin; do
		[[ -x $d/initdb ]] && pg_bin=$d
	done
	[[ -n $pg_bin ]] ||
		die "PostgreSQL is not installed (apt-get install postgresql)"
	if ((EUID == 0)); then
		id postgres >/dev/null 2>&1 || die "no postgres user to run PostgreSQL as"
		as_pg=(runuser -u postgres --)
	fi
	pg_data=$scratch/pg
	mkdir -p "$pg_data"
	if ((EUID == 0)); then
		chmod o+x "$scratch"	# postgres passes through, no more
		chown postgres: "$pg_data"
	fi
	chmod 700 "$pg_data"
	pg_run "$pg_bin/initdb" -D "$pg_data/data" -U postgres -E UTF8 \
		--locale=C.UTF-8 --auth-local=trust --auth-host=trust \
		>"$pg_data/initdb.log" 2>&1 || die "initdb failed: $(tail -3 "$pg_data/initdb.log")"
	pg_port=$(free_port)
	# WAL files kept for reuse up to 2 GB (below), none written
	# back by a checkpoint during a run.
	pg_options="-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_data"
	pg_options+=" -c min_wal_size=2GB -c max_wal_size=4GB ${BENCH_PG_OPTIONS:-}"
	if ((${#pg_pin[@]} == 0)); then
		pg_pin=("${server_pin[@]}")
	fi
	show "${pg_pin[@]}" pg_ctl start -D "$pg_data/data" -o "$pg_options"
	"${pg_pin[@]}" "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_data/data" \
		-l "$pg_data/server.log" -w -o "$pg_options" \
		start >/dev/null || die "PostgreSQL did not start: $(tail -3 "$pg_data/server.log")"
	pg_pid=$(head -1 "$pg_data/data/postmaster.pid")
	# A server that has been running has WAL files to reuse; a new one
	# makes each (16 MB, written with zeros and synced) as it needs
	# it, and the commit that needs it waits: tens of milliseconds
	# every second under load, which says nothing of the inbox. Made
	# here first, and kept for reuse by the checkpoint after.
	note "PostgreSQL: writing 800 MB of WAL ahead, to be reused"
	pg_sql postgres "CREATE TABLE ahead AS SELECT repeat('x', 2000) AS pad
		FROM generate_series(1, 400000)" >/dev/null
	pg_sql postgres "DROP TABLE ahead" >/dev/null
	pg_sql postgres "CHECKPOINT" >/dev/null
	pg_sql postgres "CREATE ROLE whr LOGIN" >/dev/null
	note "PostgreSQL $("$pg_bin/postgres" --version | awk '{ print $3 }') on 127.0.0.1:$pg_port (pid $pg_pid), fsync on"
}

pg_sql() {	# DATABASE SQL
	pg_run "$pg_bin/psql" -h "$pg_data" -p "$pg_port" -U postgres -d "$1" \
		-X -A -t -q -v ON_ERROR_STOP=1 -c "$2"
}

# An empty database for whr: each measured run starts from nothing.
fresh_database() {	# [NAME, default whr]
	local name=${1:-whr}

	PGOPTIONS="-c client_min_messages=warning" \
		pg_sql postgres "DROP DATABASE IF EXISTS $name WITH (FORCE)"
	pg_sql postgres "CREATE DATABASE $name OWNER whr"
}

stop_postgres() {
	[[ -n $pg_data && -f $pg_data/data/postmaster.pid ]] || return 0
	pg_run "$pg_bin/pg_ctl" -D "$pg_data/data" -m fast -w stop >/dev/null 2>&1 || true
	[[ -z ${results:-} ]] ||
		cp "$pg_data/server.log" "$results/postgresql.log" 2>/dev/null || true
}
