#!/usr/bin/env bash
# The broker server's shape, measured: the crate's Server (one task owns the Broker and
# writes to TCP sockets itself; one task per TCP connection) against one task per connection sharing the
# Broker behind a mutex (tokio/examples/shape_locked.rs), each on a single-threaded and
# on a 2-thread runtime, with the load generator; ROUNDS rounds (default 2), every shape
# in each round. OLD_BROKER=path adds another broker binary (for example the example
# broker of an earlier commit) with the same flags. Prints one line per run:
#   SHAPE WORKLOAD msgs/s lost N
# Stops what it starts, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${ROUNDS:-2}"
cargo build -q --release --example broker --example shape_locked --example loadgen
lg=target/release/examples/loadgen
. benches/common/procs.sh

declare -A workloads=(
    [qos1_10x2000_to_10]="--publishers 10 --messages 2000 --subscribers 10 --window 100"
    [qos1_100x100_to_1]="--publishers 100 --messages 100 --subscribers 1 --window 20"
    [qos0_10x2000_to_10]="--publishers 10 --messages 2000 --subscribers 10 --window 100 --qos 0"
)
order=(qos1_10x2000_to_10 qos1_100x100_to_1 qos0_10x2000_to_10)
limits="--max-inflight 100 --max-queued 100000 --write-queue 200000"

run_shape() { # NAME COMMAND...
    local name=$1
    shift
    "$@" --listen 127.0.0.1:0 $limits >"$tmp/out" 2>/dev/null &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 50); do
        grep -q "^listening on" "$tmp/out" && break
        sleep 0.1
    done
    local port
    port=$(sed -n 's/^listening on 127.0.0.1://p' "$tmp/out")
    for w in "${order[@]}"; do
        # shellcheck disable=SC2086
        "$lg" --port "$port" ${workloads[$w]} --json | python3 -c "
import json, sys
d = json.load(sys.stdin)
print('$name', '$w', d['msgs_per_sec'], 'lost', d['lost'])"
    done
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

for _ in $(seq "$rounds"); do
    run_shape core-task-1thread target/release/examples/broker --profile mqtt311 --threads 1
    run_shape core-task-2threads target/release/examples/broker --profile mqtt311 --threads 2
    run_shape locked-1thread target/release/examples/shape_locked --threads 1
    run_shape locked-2threads target/release/examples/shape_locked --threads 2
    if [ -n "${OLD_BROKER:-}" ]; then
        run_shape old-example "$OLD_BROKER" --profile mqtt311
    fi
done
