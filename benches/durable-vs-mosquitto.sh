#!/usr/bin/env bash
# QoS 1 throughput with full durability, against the in-memory broker and mosquitto, on
# loopback, the loadgen workload of issue 15:
#   loadgen --publishers 10 --messages 2000 --subscribers 10 --window 100 --persistent
# ROUNDS rounds (default 3); each runs, one after the other: our broker in memory, our
# broker with --data-dir (a fresh directory), mosquitto in memory, mosquitto with
# `persistence true`. Prints one line per run:
#   BROKER msgs/s lost N p50_ms X load L
# (L: the 1-minute load average when the run ended). BROKER=path runs another build of
# the example broker (to compare before and after a change). Needs mosquitto (Debian's
# /usr/sbin/mosquitto, or MOSQUITTO=path). Stops what it starts, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${ROUNDS:-3}"
mosquitto="${MOSQUITTO:-/usr/sbin/mosquitto}"
if [ -z "${BROKER:-}" ]; then
    cargo build -q --release --example broker --example loadgen
    BROKER=target/release/examples/broker
fi
lg=target/release/examples/loadgen
[ -x "$lg" ] || cargo build -q --release --example loadgen
tmp=$(mktemp -d)
chmod 755 "$tmp"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
workload="--publishers 10 --messages 2000 --subscribers 10 --window 100 --persistent"

free_port() {
    python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
}

drive() { # NAME PORT
    # shellcheck disable=SC2086
    "$lg" --port "$2" $workload --json | python3 -c "
import json, os, sys
d = json.load(sys.stdin)
print('$1', d['msgs_per_sec'], 'lost', d['lost'], 'p50_ms', d['latency_ms']['p50'],
      'load', os.getloadavg()[0])"
}

ours() { # NAME [broker flags]
    local name=$1
    shift
    "$BROKER" --listen 127.0.0.1:0 --profile mqtt311 --max-inflight 100 \
        --max-queued 100000 --write-queue 200000 "$@" >"$tmp/ours.out" 2>"$tmp/ours.err" &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 300); do
        grep -q "^listening on" "$tmp/ours.out" && break
        sleep 0.1
    done
    if ! grep -q "^listening on" "$tmp/ours.out"; then
        echo "$name: the broker did not start:" >&2
        tail -5 "$tmp/ours.err" >&2
        kill "$pid" 2>/dev/null || true
        return
    fi
    drive "$name" "$(sed -n 's/^listening on 127.0.0.1://p' "$tmp/ours.out")"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

mosq() { # NAME [extra config]
    local port
    port=$(free_port)
    printf 'max_inflight_messages 100\nmax_queued_messages 100000\nlistener %s 127.0.0.1\nallow_anonymous true\n%s' \
        "$port" "${2:-}" >"$tmp/mosquitto.conf"
    "$mosquitto" -c "$tmp/mosquitto.conf" >/dev/null 2>&1 &
    local pid=$!
    pids+=("$pid")
    sleep 0.5
    drive "$1" "$port"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

for round in $(seq "$rounds"); do
    ours mqtt-sansio-memory
    rm -rf "$tmp/data" && mkdir "$tmp/data"
    ours mqtt-sansio-data-dir --data-dir "$tmp/data"
    echo "data-dir bytes after the run: $(du -sb "$tmp/data" | cut -f1)"
    mosq mosquitto-memory
    rm -rf "$tmp/mosq" && mkdir "$tmp/mosq" && chmod 777 "$tmp/mosq"
    mosq mosquitto-persistence "$(printf 'persistence true\npersistence_location %s/\n' "$tmp/mosq")"
    echo "round $round done"
done
