#!/usr/bin/env bash
# Short, bounded load run for `make bench`: starts the built server on a
# loopback port with the rate and per-IP limits off (as load runs use it),
# runs each load mode for a few seconds and prints the figures. Every run
# stops by itself; the server is stopped on exit.
#
# Environment: BIN (directory with p2pchat and p2pchat-load, default bin),
# PORT (default 18089), USERS (idle users, default 5000), RATE
# (offers+candidates/s, default 10000), SECS (relay and churn time, default 5).
set -euo pipefail

bin=${BIN:-bin}
port=${PORT:-18089}
users=${USERS:-5000}
rate=${RATE:-10000}
secs=${SECS:-5}
url="ws://127.0.0.1:$port/ws"

log=$(mktemp)
"$bin/p2pchat" -addr "127.0.0.1:$port" -msg-rate 0 -max-conns-per-ip 0 -presence=false 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -f "$log"' EXIT

for _ in $(seq 50); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
	sleep 0.1
done

echo "# machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
run() {
	echo "# p2pchat-load $*"
	"$bin/p2pchat-load" -url "$url" -pid "$pid" -max-time 2m "$@"
}
run -mode idle -users "$users" -concurrency 100 -hold 2s
run -mode relay -pairs 100 -rate "$rate" -duration "${secs}s"
run -mode churn -concurrency 50 -duration "${secs}s"
# 1,000 users that never read while 10 pairs relay: each is cut off at
# -send-queue-bytes (128 KiB); the server's RSS must stay under 400 MiB.
run -mode relay -pairs 10 -rate "$rate" -duration "${secs}s" -stalled 1000 -rss-limit 409600
