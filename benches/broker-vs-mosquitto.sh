#!/usr/bin/env bash
# The example broker against mosquitto, on loopback, with the same limits and the same
# load generator settings: ROUNDS rounds (default 3), each running every workload
# against our broker and then against mosquitto. Prints one line per run:
#   BROKER WORKLOAD msgs/s lost N p50_ms X
# Needs mosquitto (Debian's /usr/sbin/mosquitto, or MOSQUITTO=path). Stops what it
# starts, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${ROUNDS:-3}"
mosquitto="${MOSQUITTO:-/usr/sbin/mosquitto}"
cargo build -q --release --example broker --example loadgen
lg=target/release/examples/loadgen
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

declare -A workloads=(
    [qos1_10x2000_to_10]="--publishers 10 --messages 2000 --subscribers 10 --window 100"
    [qos1_100x100_to_1]="--publishers 100 --messages 100 --subscribers 1 --window 20"
    [qos0_10x2000_to_10]="--publishers 10 --messages 2000 --subscribers 10 --window 100 --qos 0"
    [qos1_1x2000_window1]="--publishers 1 --messages 2000 --subscribers 1 --window 1"
)
order=(qos1_10x2000_to_10 qos1_100x100_to_1 qos0_10x2000_to_10 qos1_1x2000_window1)

free_port() {
    python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
}

drive() { # BROKER PORT
    for w in "${order[@]}"; do
        # shellcheck disable=SC2086
        "$lg" --port "$2" ${workloads[$w]} --json | python3 -c "
import json, sys
d = json.load(sys.stdin)
print('$1', '$w', d['msgs_per_sec'], 'lost', d['lost'], 'p50_ms', d['latency_ms']['p50'])"
    done
}

for _ in $(seq "$rounds"); do
    target/release/examples/broker --listen 127.0.0.1:0 --profile mqtt311 \
        --max-inflight 100 --max-queued 100000 --write-queue 200000 >"$tmp/ours.out" 2>/dev/null &
    ours=$!
    pids+=("$ours")
    for _ in $(seq 50); do
        grep -q "listening on" "$tmp/ours.out" && break
        sleep 0.1
    done
    drive mqtt-sansio "$(sed -n 's/^listening on 127.0.0.1://p' "$tmp/ours.out")"
    kill "$ours"
    wait "$ours" 2>/dev/null || true

    port=$(free_port)
    printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 100\nmax_queued_messages 100000\n' \
        "$port" >"$tmp/mosquitto.conf"
    "$mosquitto" -c "$tmp/mosquitto.conf" >/dev/null 2>&1 &
    mosq=$!
    pids+=("$mosq")
    sleep 0.5
    drive mosquitto "$port"
    kill "$mosq"
    wait "$mosq" 2>/dev/null || true
done
