#!/usr/bin/env bash
# The example broker against mosquitto, on loopback, with the same limits and the same
# load generator settings: ROUNDS rounds (default 3), each running every workload
# against our broker and then against mosquitto, first over TCP, then the TLS workloads
# over TLS (both brokers with the same server certificate, made here by the openssl
# CLI). Prints one line per run:
#   BROKER WORKLOAD msgs/s lost N p50_ms X p99_ms Y
# (latency: from the publish call to the delivery at a subscriber, in the load generator)
# Needs mosquitto (Debian's /usr/sbin/mosquitto, or MOSQUITTO=path). BEFORE=path adds
# another build of the example broker (an older commit, say) to each round, printed as
# `mqtt-sansio-before`. Stops what it starts, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${ROUNDS:-3}"
mosquitto="${MOSQUITTO:-/usr/sbin/mosquitto}"
cargo build -q --release --example broker --example loadgen
lg=target/release/examples/loadgen
. benches/common/procs.sh

declare -A workloads=(
    [qos1_10x2000_to_10]="--publishers 10 --messages 2000 --subscribers 10 --window 100"
    [qos1_100x100_to_1]="--publishers 100 --messages 100 --subscribers 1 --window 20"
    [qos0_10x2000_to_10]="--publishers 10 --messages 2000 --subscribers 10 --window 100 --qos 0"
    [qos1_1x2000_window1]="--publishers 1 --messages 2000 --subscribers 1 --window 1"
)
order=(qos1_10x2000_to_10 qos1_100x100_to_1 qos0_10x2000_to_10 qos1_1x2000_window1)
tls_order=(qos1_10x2000_to_10 qos0_10x2000_to_10)

# A CA and a server certificate for 127.0.0.1, for this run only.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -keyout "$tmp/ca.key" -out "$tmp/ca.pem" -subj "/CN=bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$tmp/server.key" -out "$tmp/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$tmp/ext"
openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
    -days 1 -extfile "$tmp/ext" -out "$tmp/server.pem" 2>/dev/null
# mosquitto drops root for its own user, which must read them.
chmod 755 "$tmp" && chmod 644 "$tmp"/*

free_port() {
    python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
}

drive() { # BROKER PORT TLS_PORT
    for w in "${order[@]}"; do
        # shellcheck disable=SC2086
        "$lg" --port "$2" ${workloads[$w]} --json | python3 -c "
import json, sys
d = json.load(sys.stdin)
print('$1', '$w', d['msgs_per_sec'], 'lost', d['lost'], 'p50_ms', d['latency_ms']['p50'], 'p99_ms', d['latency_ms']['p99'])"
    done
    for w in "${tls_order[@]}"; do
        # shellcheck disable=SC2086
        "$lg" --port "$3" --cafile "$tmp/ca.pem" ${workloads[$w]} --json | python3 -c "
import json, sys
d = json.load(sys.stdin)
print('$1', 'tls_$w', d['msgs_per_sec'], 'lost', d['lost'], 'p50_ms', d['latency_ms']['p50'], 'p99_ms', d['latency_ms']['p99'])"
    done
}

run_ours() { # NAME BINARY
    "$2" --listen 127.0.0.1:0 --profile mqtt311 \
        --tls-listen 127.0.0.1:0 --tls-cert "$tmp/server.pem" --tls-key "$tmp/server.key" \
        --max-inflight 100 --max-queued 100000 --write-queue 200000 >"$tmp/ours.out" 2>/dev/null &
    local ours=$!
    pids+=("$ours")
    for _ in $(seq 50); do
        grep -q "tls listening on" "$tmp/ours.out" && break
        sleep 0.1
    done
    drive "$1" "$(sed -n 's/^listening on 127.0.0.1://p' "$tmp/ours.out")" \
        "$(sed -n 's/^tls listening on 127.0.0.1://p' "$tmp/ours.out")"
    kill "$ours"
    wait "$ours" 2>/dev/null || true
}

for _ in $(seq "$rounds"); do
    run_ours mqtt-sansio target/release/examples/broker
    if [ -n "${BEFORE:-}" ]; then
        run_ours mqtt-sansio-before "$BEFORE"
    fi

    port=$(free_port)
    tls_port=$(free_port)
    printf 'max_inflight_messages 100\nmax_queued_messages 100000\nlistener %s 127.0.0.1\nallow_anonymous true\nlistener %s 127.0.0.1\nallow_anonymous true\ncertfile %s\nkeyfile %s\n' \
        "$port" "$tls_port" "$tmp/server.pem" "$tmp/server.key" >"$tmp/mosquitto.conf"
    "$mosquitto" -c "$tmp/mosquitto.conf" >/dev/null 2>&1 &
    mosq=$!
    pids+=("$mosq")
    sleep 0.5
    drive mosquitto "$port" "$tls_port"
    kill "$mosq"
    wait "$mosq" 2>/dev/null || true
done
