#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine (Debian's slurm-wlm and munge), to run sweeps with
# hydra/launcher=slurm exactly as on a cluster.
#
#   scripts/slurm-local.sh start    # install what is missing, write slurm.conf, start munged, slurmctld and
#                                   # slurmd, wait until sinfo shows the node idle; prints `export SLURM_CONF=...`
#   scripts/slurm-local.sh status   # the daemons and sinfo (exit 1 when not all run)
#   scripts/slurm-local.sh stop     # cancel our jobs and stop the three daemons this script started (by pid)
#
# Then, in the shell that submits:  export SLURM_CONF=<printed path>
#   gansweep-train -m experiment=smoke hydra/launcher=slurm hydra.launcher.cpus_per_task=1 \
#       hydra.launcher.mem_gb=2 tracking=server tracking.uri=http://127.0.0.1:PORT
#
# Everything lives in GANSWEEP_SLURM_DIR (default <project>/.slurm): slurm.conf, munge's own key and socket,
# the daemons' state, logs and pids. Nothing under /etc is changed, and a munged or SLURM already running on
# the machine is left alone (ours use their own ports and socket). The node is this host with the cores and
# memory `slurmd -C` reports, proctrack/linuxproc and task/none (no cgroups), no accounting database (so no
# sacct; submitit then learns a job's end from its result file). Needs root (slurmd runs jobs as their user).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${GANSWEEP_SLURM_DIR:-$ROOT/.slurm}
WAIT_S=${GANSWEEP_SLURM_WAIT_S:-180}
CONF=$DIR/etc/slurm.conf
export SLURM_CONF=$CONF

say() { echo "[slurm-local] $*" >&2; }
die() {
	say "error: $*"
	exit 1
}
pid_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }
pidof_file() { [[ -f $1 ]] && cat "$1" || true; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

install_slurm() {
	local missing=()
	for tool in munged slurmctld slurmd sinfo sbatch; do
		command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin command -v "$tool" >/dev/null || missing+=("$tool")
	done
	((${#missing[@]} == 0)) && return 0
	command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get: install slurm-wlm and munge"
	say "installing slurm-wlm and munge (apt-get; missing: ${missing[*]})"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null ||
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null; } ||
		die "apt-get install slurm-wlm munge failed"
}

write_conf() {
	local host node
	host=$(hostname -s)
	# the node as slurmd sees it: CPUs, sockets, cores, threads, memory (MB) of this machine
	node=$(slurmd -C | head -1 | sed -e 's/^NodeName=[^ ]* //')
	[[ $node == *CPUs=* ]] || die "slurmd -C gave no node description: $node"
	[[ -f $DIR/ports ]] || echo "$(free_port) $(free_port)" >"$DIR/ports"
	read -r ctld_port d_port <"$DIR/ports"
	mkdir -p "$DIR/etc" "$DIR/state/ctld" "$DIR/state/d" "$DIR/log" "$DIR/run"
	cat >"$CONF.new" <<EOF
# Written by scripts/slurm-local.sh: one node, this machine ($host).
ClusterName=gansweep
SlurmctldHost=$host
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state/ctld
SlurmdSpoolDir=$DIR/state/d
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
# scancel and the time limit send SIGTERM; a job gets this long to checkpoint before SIGKILL
KillWait=60
SlurmdTimeout=120
InactiveLimit=0
MinJobAge=300
NodeName=$host $node State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
	mv "$CONF.new" "$CONF"
}

start_munge() {
	local pid
	pid=$(pidof_file "$DIR/munge/munged.pid")
	if pid_alive "$pid"; then
		say "munged already running (pid $pid)"
		return 0
	fi
	mkdir -p "$DIR/munge"
	if [[ ! -s $DIR/munge/munge.key ]]; then
		dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
	fi
	chown -R munge: "$DIR/munge"
	chmod 755 "$DIR/munge" # munged wants its socket's folder searchable by all; the key stays munge's own
	chmod 400 "$DIR/munge/munge.key"
	say "starting munged (socket $DIR/munge/munge.socket)"
	runuser -u munge -- "$(PATH=$PATH:/usr/sbin command -v munged)" --socket="$DIR/munge/munge.socket" \
		--key-file="$DIR/munge/munge.key" --pid-file="$DIR/munge/munged.pid" \
		--log-file="$DIR/munge/munged.log" --seed-file="$DIR/munge/munged.seed" ||
		die "munged did not start: $(tail -3 "$DIR/munge/munged.log" 2>/dev/null)"
}

start_daemon() { # name, pidfile
	local name=$1 pidfile=$2 pid
	pid=$(pidof_file "$pidfile")
	if pid_alive "$pid"; then
		say "$name already running (pid $pid)"
		return 0
	fi
	say "starting $name"
	"$(PATH=$PATH:/usr/sbin command -v "$name")" -f "$CONF" ||
		die "$name did not start: $(tail -5 "$DIR/log/$name.log" 2>/dev/null)"
	local deadline=$((SECONDS + 30))
	until pid_alive "$(pidof_file "$pidfile")"; do
		((SECONDS < deadline)) || die "$name wrote no pid file: $(tail -5 "$DIR/log/$name.log" 2>/dev/null)"
		sleep 0.5
	done
}

node_state() { sinfo -h -N -o '%T' 2>/dev/null | head -1; }

cmd_start() {
	[[ $(id -u) -eq 0 ]] || die "run as root: slurmd starts jobs as their submitting user"
	install_slurm
	export PATH=$PATH:/usr/sbin
	mkdir -p "$DIR"
	chmod 755 "$DIR"
	write_conf
	start_munge
	start_daemon slurmctld "$DIR/run/slurmctld.pid"
	start_daemon slurmd "$DIR/run/slurmd.pid"
	local deadline=$((SECONDS + WAIT_S)) state=""
	while true; do
		state=$(node_state)
		[[ $state == idle* || $state == mixed* || $state == allocated* ]] && break
		if [[ $state == down* || $state == drain* ]]; then
			scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
		fi
		((SECONDS < deadline)) || die "the node is '${state:-unknown}' after ${WAIT_S} s (logs in $DIR/log)"
		sleep 1
	done
	say "node $(hostname -s) is $state: $(sinfo -h -o '%P %c CPUs %m MB' | head -1)"
	echo "export SLURM_CONF=$CONF"
}

stop_pid() { # name, pidfile: SIGTERM, wait, SIGKILL
	local name=$1 pid i
	pid=$(pidof_file "$2")
	pid_alive "$pid" || return 0
	say "stopping $name (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 1 60); do
		pid_alive "$pid" || return 0
		sleep 0.5
	done
	say "$name (pid $pid) did not stop in 30 s: SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
}

cmd_stop() {
	export PATH=$PATH:/usr/sbin
	if pid_alive "$(pidof_file "$DIR/run/slurmctld.pid")"; then
		# our cluster's jobs end with their daemons: cancel them so their steps get SIGTERM first
		scancel --full --partition=local 2>/dev/null || true
		local deadline=$((SECONDS + 60))
		while [[ -n $(squeue -h 2>/dev/null) ]] && ((SECONDS < deadline)); do sleep 1; done
	fi
	stop_pid slurmd "$DIR/run/slurmd.pid"
	stop_pid slurmctld "$DIR/run/slurmctld.pid"
	stop_pid munged "$DIR/munge/munged.pid"
}

cmd_status() {
	export PATH=$PATH:/usr/sbin
	local ok=0 name pidfile
	for name in munged slurmctld slurmd; do
		pidfile=$DIR/run/$name.pid
		[[ $name == munged ]] && pidfile=$DIR/munge/munged.pid
		if pid_alive "$(pidof_file "$pidfile")"; then say "$name: running (pid $(pidof_file "$pidfile"))"; else
			say "$name: stopped"
			ok=1
		fi
	done
	((ok == 0)) && sinfo >&2 && echo "export SLURM_CONF=$CONF"
	return $ok
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*)
	echo "usage: $0 start|stop|status   (state in \$GANSWEEP_SLURM_DIR, default $ROOT/.slurm)" >&2
	exit 2
	;;
esac
