#!/usr/bin/env bash
# Scale-out figures over NATS (docs/benchmarks.md, "Scale-out over NATS"):
# a local nats-server with JetStream (store in a temp dir) and N p2pchat
# instances joined with -nats, on loopback, with the rate and per-IP
# limits off; every scenario against a fresh nats-server and fresh
# instances, REPS times. Every run is bounded (-max-time) and everything
# started here is stopped on exit.
#
# Environment: BIN (directory with p2pchat and p2pchat-load, default bin),
# LOAD (the load tool, default $BIN/p2pchat-load: an A/B of two servers
# runs one tool),
# NATS_SERVER (nats-server binary, default $BIN/nats-server; build it with
# `go build -o bin/nats-server github.com/nats-io/nats-server/v2`),
# INSTANCES (default 6), USERS (idle users in all, default 100000), PROCS
# (load-tool processes holding them, default 6), REPS (default 3), ONLY
# (space-separated scenarios: big logins cross same churn failover;
# default all but logins), CHURN (workers logging in and out during the
# logins scenario, default 12), CHURN_RATE (their logins per second in
# all, default 300),
# LOGS (a directory: each run's nats-server and instance logs are kept
# there, else they go with the temp dir).
set -euo pipefail

bin=${BIN:-bin}
nats_bin=${NATS_SERVER:-$bin/nats-server}
instances=${INSTANCES:-6}
users=${USERS:-100000}
procs=${PROCS:-6}
reps=${REPS:-3}
only=${ONLY:-big cross same churn failover}
load_bin=${LOAD:-$bin/p2pchat-load}
churn=${CHURN:-12}
churn_rate=${CHURN_RATE:-300}
nats_port=14222
base_port=18100

tmp=$(mktemp -d)
pids=()
run=0
stop_all() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
	if [ -n "${LOGS:-}" ] && ls "$tmp"/*.log >/dev/null 2>&1; then
		run=$((run + 1))
		mkdir -p "$LOGS/$run"
		mv "$tmp"/*.log "$LOGS/$run/"
	fi
}
trap 'stop_all; rm -rf "$tmp"' EXIT

wait_port() {
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "port $1 did not open" >&2
	return 1
}

# start N LEASE: a fresh nats-server and N instances; sets urls, spids, npid.
start() {
	local n=$1 lease=$2
	rm -rf "$tmp/js"
	"$nats_bin" -a 127.0.0.1 -p "$nats_port" -js -sd "$tmp/js" 2>"$tmp/nats.log" &
	npid=$!
	pids+=("$npid")
	wait_port "$nats_port"
	urls="" spids=""
	for i in $(seq 0 $((n - 1))); do
		port=$((base_port + i))
		"$bin/p2pchat" -addr "127.0.0.1:$port" -https-addr "" -msg-rate 0 -max-conns-per-ip 0 \
			-nats "nats://127.0.0.1:$nats_port" -nats-lease "$lease" 2>"$tmp/p2pchat-$i.log" &
		pids+=("$!")
		spids+="${spids:+,}$!"
		urls+="${urls:+,}ws://127.0.0.1:$port/ws"
	done
	for i in $(seq 0 $((n - 1))); do wait_port $((base_port + i)); done
	for i in $(seq 0 $((n - 1))); do
		for _ in $(seq 100); do
			if curl -sf "http://127.0.0.1:$((base_port + i))/healthz" >/dev/null; then break; fi
			sleep 0.1
		done
	done
}

load() {
	echo "# $(date -u +%H:%M:%S) load average $(cut -d' ' -f1-3 /proc/loadavg): p2pchat-load $*"
	"$load_bin" -url "$urls" -pid "$spids" -nats-pid "$npid" "$@" || echo "# run failed: $?"
}

echo "# machine: $(nproc) CPUs, $(free -g | awk '/Mem:/ {print $2}') GiB; instances $instances, users $users, procs $procs"
for rep in $(seq "$reps"); do
	for s in $only; do
		case $s in
		big) # users idle across all instances, 1,000 relayed/s between instances among them
			start "$instances" 30s
			load -mode relay -procs "$procs" -idle "$users" -concurrency 120 -pairs 50 -rate 667 -cross -duration 10s -max-time 8m -timeout 30s
			;;
		logins) # as big, with logins and logouts on every instance during the relays (issue 18)
			start "$instances" 30s
			load -mode relay -procs "$procs" -idle "$users" -concurrency 120 -pairs 50 -rate 667 -cross -churn "$churn" -churn-rate "$churn_rate" -duration 10s -max-time 5m -timeout 30s
			;;
		cross | same) # 10,000 relayed/s, caller and callee on different instances or the same
			start 2 30s
			flag=""
			[ "$s" = cross ] && flag=-cross
			load -mode relay -pairs 100 -rate 6667 $flag -duration 10s -max-time 2m
			;;
		churn) # logins across the instances
			start "$instances" 30s
			load -mode churn -concurrency 48 -duration 10s -max-time 2m
			;;
		failover) # SIGKILL one instance, time until its names are free elsewhere (lease 2 s)
			start 2 2s
			load -mode failover -users 1000 -probes 100 -kill-pid "${spids%%,*}" -duration 20s -max-time 2m
			;;
		esac
		stop_all
	done
done
