#!/usr/bin/env bash
# A team tracking server on this machine: PostgreSQL (its own cluster, initdb + pg_ctl, in a folder of ours)
# behind `mlflow server --serve-artifacts`, both on 127.0.0.1.
#
#   scripts/mlflow-server.sh start    # install what is missing, start both, print the tracking URI
#   scripts/mlflow-server.sh status   # print the URI when both run (exit 0), else what is down (exit 1)
#   scripts/mlflow-server.sh stop     # stop the two daemons this script started (by their pids)
#   scripts/mlflow-server.sh uri      # print the URI only (exit 1 when not running)
#
# Then: gansweep-train -m experiment=smoke tracking=server tracking.uri=<URI>
#
# Settings (environment):
#   GANSWEEP_SERVER_DIR   state folder: the database cluster, artifacts, logs, pids (default <project>/.server).
#                         PostgreSQL refuses to run as root, so when root runs this the cluster runs as the
#                         `postgres` user, which must be able to reach the folder (no 0700 parent).
#   MLFLOW_PORT           the MLflow server's port (default: a free one, kept across restarts)
#   MLFLOW_WORKERS        its worker processes (default 2)
#   GANSWEEP_PYTHON       the Python whose mlflow runs the server (default <project>/.venv/bin/python)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${GANSWEEP_SERVER_DIR:-$ROOT/.server}
PY=${GANSWEEP_PYTHON:-$ROOT/.venv/bin/python}
WORKERS=${MLFLOW_WORKERS:-2}
WAIT_S=${GANSWEEP_SERVER_WAIT_S:-180}  # generous: the machine may be busy training

say() { echo "[mlflow-server] $*" >&2; }
die() {
	say "error: $*"
	exit 1
}

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pid_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

pg_bin() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
	[[ -n $d && -x $d/initdb ]] && echo "$d"
}

as_pg() { # run a PostgreSQL command as the cluster's owner
	if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install_postgres() {
	[[ -n $(pg_bin) ]] && return 0
	[[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null ||
		die "PostgreSQL is not installed and this is not a root Debian shell: install postgresql (initdb, pg_ctl)"
	say "installing postgresql (apt-get)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null ||
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null; } ||
		die "apt-get install postgresql failed"
	[[ -n $(pg_bin) ]] || die "postgresql installed but no initdb under /usr/lib/postgresql/*/bin"
}

check_driver() {
	[[ -x $PY ]] || die "$PY not found: run make setup (or set GANSWEEP_PYTHON)"
	"$PY" -c 'import psycopg' 2>/dev/null ||
		die "the PostgreSQL driver is missing in $PY: pip install -e '.[server]' (make server does it)"
}

pg_pid() { [[ -f $DIR/pg/postmaster.pid ]] && head -1 "$DIR/pg/postmaster.pid" || true; }
mlflow_pid() { [[ -f $DIR/mlflow.pid ]] && cat "$DIR/mlflow.pid" || true; }
uri() { echo "http://127.0.0.1:$(cat "$DIR/mlflow.port")"; }
healthy() { [[ -f $DIR/mlflow.port ]] && "$PY" - "$(uri)/health" <<'EOF' 2>/dev/null; }
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF

start_postgres() {
	local bin port
	bin=$(pg_bin)
	mkdir -p "$DIR"
	if [[ ! -f $DIR/pg/PG_VERSION ]]; then
		rm -rf "$DIR/pg"
		mkdir -p "$DIR/pg"
		# the superuser's password, for the TCP connections mlflow makes (scram); local socket: peer
		(umask 077 && "$PY" -c 'import secrets; print(secrets.token_urlsafe(24))' >"$DIR/pg.password")
		if [[ $(id -u) -eq 0 ]]; then
			chown postgres: "$DIR/pg"
			install -m 600 -o postgres "$DIR/pg.password" "$DIR/pg.pwfile"
			as_pg test -x "$DIR" || die "user postgres cannot reach $DIR (a parent folder is private): choose another GANSWEEP_SERVER_DIR"
		else
			install -m 600 "$DIR/pg.password" "$DIR/pg.pwfile"
		fi
		say "initdb $DIR/pg"
		as_pg "$bin/initdb" -D "$DIR/pg" -U postgres --pwfile="$DIR/pg.pwfile" --auth-local=peer \
			--auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 ||
			die "initdb failed: $(tail -3 "$DIR/initdb.log")"
		rm -f "$DIR/pg.pwfile"
		free_port >"$DIR/pg.port"
	fi
	port=$(cat "$DIR/pg.port")
	if pid_alive "$(pg_pid)"; then
		say "PostgreSQL already running (pid $(pg_pid), port $port)"
	else
		say "starting PostgreSQL on 127.0.0.1:$port"
		# the log lives in the data folder, which the postgres user owns
		as_pg "$bin/pg_ctl" -D "$DIR/pg" -l "$DIR/pg/server.log" -w -t "$WAIT_S" \
			-o "-c listen_addresses=127.0.0.1 -p $port -k $DIR/pg" start >/dev/null ||
			die "PostgreSQL did not start: $(tail -5 "$DIR/pg/server.log" 2>/dev/null)"
	fi
	if ! as_pg "$bin/psql" -h "$DIR/pg" -p "$port" -U postgres -Atqc \
		"select 1 from pg_database where datname='mlflow'" postgres | grep -q 1; then
		as_pg "$bin/createdb" -h "$DIR/pg" -p "$port" -U postgres mlflow || die "createdb mlflow failed"
	fi
}

start_mlflow() {
	local pid port
	pid=$(mlflow_pid)
	if pid_alive "$pid" && healthy; then
		say "MLflow server already running (pid $pid)"
		return 0
	fi
	if pid_alive "$pid"; then # started but not answering: give it the usual wait below
		say "MLflow server pid $pid is up but not answering yet"
	else
		[[ -f $DIR/mlflow.port && -z ${MLFLOW_PORT:-} ]] || echo "${MLFLOW_PORT:-$(free_port)}" >"$DIR/mlflow.port"
		port=$(cat "$DIR/mlflow.port")
		mkdir -p "$DIR/artifacts"
		say "starting MLflow server on 127.0.0.1:$port ($WORKERS workers)"
		# The backend URI carries the password: hand it over in the environment, not on the command line.
		# MLflow's job runner (GenAI jobs: seven extra processes of 250 MB) is not used by gansweep.
		MLFLOW_BACKEND_STORE_URI="postgresql+psycopg://postgres:$(cat "$DIR/pg.password")@127.0.0.1:$(cat "$DIR/pg.port")/mlflow" \
			MLFLOW_SERVER_ENABLE_JOB_EXECUTION=${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false} \
			setsid "$(dirname "$PY")/mlflow" server --host 127.0.0.1 --port "$port" --workers "$WORKERS" \
			--artifacts-destination "$DIR/artifacts" --serve-artifacts \
			>"$DIR/mlflow.log" 2>&1 </dev/null &
		echo $! >"$DIR/mlflow.pid"
		pid=$!
	fi
	local deadline=$((SECONDS + WAIT_S))
	until healthy; do
		pid_alive "$pid" || die "the MLflow server exited: $(tail -5 "$DIR/mlflow.log")"
		((SECONDS < deadline)) || die "the MLflow server did not answer /health in ${WAIT_S} s (log: $DIR/mlflow.log)"
		sleep 1
	done
}

stop_pid_group() { # SIGTERM the session $1 leads, wait, then SIGKILL what is left
	local pid=$1 i
	pid_alive "$pid" || return 0
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 1 60); do
		kill -0 -- "-$pid" 2>/dev/null || return 0
		sleep 0.5
	done
	say "pid $pid did not stop in 30 s: SIGKILL"
	kill -KILL -- "-$pid" 2>/dev/null || true
}

cmd_start() {
	install_postgres
	check_driver
	start_postgres
	start_mlflow
	say "running: MLflow server pid $(mlflow_pid), PostgreSQL pid $(pg_pid), artifacts in $DIR/artifacts"
	say "use: tracking=server tracking.uri=$(uri)"
	uri
}

cmd_stop() {
	local pid
	pid=$(mlflow_pid)
	if pid_alive "$pid"; then
		say "stopping MLflow server (pid $pid)"
		stop_pid_group "$pid"
	fi
	rm -f "$DIR/mlflow.pid"
	if pid_alive "$(pg_pid)"; then
		say "stopping PostgreSQL (pid $(pg_pid))"
		as_pg "$(pg_bin)/pg_ctl" -D "$DIR/pg" -m fast -w -t "$WAIT_S" stop >/dev/null
	fi
}

cmd_status() {
	local ok=0
	if pid_alive "$(pg_pid)"; then say "PostgreSQL: running (pid $(pg_pid), port $(cat "$DIR/pg.port"))"; else
		say "PostgreSQL: stopped"
		ok=1
	fi
	if pid_alive "$(mlflow_pid)" && healthy; then say "MLflow server: running (pid $(mlflow_pid))"; else
		say "MLflow server: stopped"
		ok=1
	fi
	((ok == 0)) && uri
	return $ok
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
uri) { pid_alive "$(mlflow_pid)" && healthy && uri; } || die "not running (scripts/mlflow-server.sh start)" ;;
*)
	echo "usage: $0 start|stop|status|uri   (state in \$GANSWEEP_SERVER_DIR, default $ROOT/.server)" >&2
	exit 2
	;;
esac
