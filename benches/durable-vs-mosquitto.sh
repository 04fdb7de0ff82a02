#!/usr/bin/env bash
# QoS 1 throughput of durable brokers, on loopback, with the load generator's persistent
# workload (subscribers with clean session 0, so a durable broker stores every delivery):
#   loadgen --publishers 10 --messages 2000 --subscribers 10 --window 100 --persistent
# ROUNDS rounds (default 2); each runs it against, in order:
#   ours-memory     examples/broker in memory
#   ours-data-dir   examples/broker --data-dir (a new directory; SQLite, synchronous=FULL)
#   mosquitto-memory   mosquitto, persistence false
#   mosquitto-persist  mosquitto, persistence true (a new persistence_location, the
#                      default autosave_interval: it writes its database every 30 min
#                      and at a clean shutdown, so nothing is synced per message)
# with the same limits (ours --max-inflight 100 --max-queued 100000 --write-queue 200000;
# mosquitto max_inflight_messages 100, max_queued_messages 100000). Prints one line per
# run, with the load average before it:
#   BROKER msgs/s M lost N p50_ms X load L [dir_bytes B]
# Then the restart tool (tokio/examples/restart_time.rs): our broker's start on 10 000
# sessions holding 100 000 queued messages, and the disk bytes per stored message.
# BROKER=path runs another build of the example broker (to compare before and after a
# change). Needs mosquitto (Debian's /usr/sbin/mosquitto, or MOSQUITTO=path). Stops what
# it starts, by PID; removes its directories.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${ROUNDS:-2}"
mosquitto="${MOSQUITTO:-/usr/sbin/mosquitto}"
cargo build -q --release --example broker --example loadgen --example restart_time
broker="${BROKER:-target/release/examples/broker}"
lg=target/release/examples/loadgen
. benches/common/procs.sh
# mosquitto drops root for its own user, which must write its persistence directory.
chmod 777 "$tmp"
workload="--publishers 10 --messages 2000 --subscribers 10 --window 100 --persistent"

load() { cut -d' ' -f1 /proc/loadavg; }

free_port() {
    python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
}

drive() { # NAME PORT [DIR]
    local l
    l=$(load)
    # shellcheck disable=SC2086
    "$lg" --port "$2" $workload --json | python3 -c "
import json, sys
d = json.load(sys.stdin)
print('$1', 'msgs/s', d['msgs_per_sec'], 'lost', d['lost'], 'p50_ms', d['latency_ms']['p50'], 'load', '$l', end='')"
    if [ -n "${3:-}" ]; then
        echo " dir_bytes $(du -sb "$3" | cut -f1)"
    else
        echo
    fi
}

ours() { # NAME [--data-dir DIR]
    "$broker" --listen 127.0.0.1:0 --profile mqtt311 \
        --max-inflight 100 --max-queued 100000 --write-queue 200000 "${@:2}" >"$tmp/ours.out" 2>/dev/null &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do
        grep -q "^listening on" "$tmp/ours.out" && break
        sleep 0.1
    done
    drive "$1" "$(sed -n 's/^listening on 127.0.0.1://p' "$tmp/ours.out")" "${3:-}"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

theirs() { # NAME PERSISTENCE
    local port dir
    port=$(free_port)
    dir="$tmp/mosquitto-$RANDOM/"
    mkdir -p "$dir" && chmod 777 "$dir"
    printf 'max_inflight_messages 100\nmax_queued_messages 100000\nlistener %s 127.0.0.1\nallow_anonymous true\npersistence %s\npersistence_location %s\n' \
        "$port" "$2" "$dir" >"$tmp/mosquitto.conf"
    "$mosquitto" -c "$tmp/mosquitto.conf" >/dev/null 2>&1 &
    local pid=$!
    pids+=("$pid")
    sleep 0.5
    drive "$1" "$port"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    if [ "$2" = true ]; then
        echo "$1 database after a clean shutdown: $(du -sb "$dir" | cut -f1) bytes"
    fi
}

for r in $(seq "$rounds"); do
    ours ours-memory
    ours ours-data-dir --data-dir "$tmp/data-$r"
    theirs mosquitto-memory false
    theirs mosquitto-persist true
done

echo "restart load $(load): $(target/release/examples/restart_time)"
