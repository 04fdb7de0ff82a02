#!/usr/bin/env bash
# Window-1 latency, the example broker against mosquitto: one publisher, one subscriber,
# QoS 1, one message in flight (`loadgen --window 1`), MESSAGES messages (default
# 10000) per run, each broker started fresh for each run, ROUNDS rounds (default 10)
# interleaved: ours, BEFORE (if given: another build of the example broker, printed as
# `before`), mosquitto. On a small virtual machine the round trip is mostly the wake-up
# of an idle CPU, which swings from run to run, so the figures to compare are the
# medians over the rounds, printed at the end.
#
# PIN chooses where the processes run: `none` (default, the scheduler decides), `same`
# (broker and load generator share CPU 0: no cross-CPU wake-up, the processing shows),
# `split` (broker on CPU 1, load generator on CPU 0).
# Prints one line per run, `BROKER msgs_per_sec p50_us p99_us` (to 0.1 us), then one
# summary line per broker and the round-by-round difference between ours and
# mosquitto. Stops what it starts, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${ROUNDS:-10}"
messages="${MESSAGES:-10000}"
mosquitto="${MOSQUITTO:-/usr/sbin/mosquitto}"
case "${PIN:-none}" in
none) on_broker=(); on_loadgen=() ;;
same) on_broker=(taskset -c 0); on_loadgen=(taskset -c 0) ;;
split) on_broker=(taskset -c 1); on_loadgen=(taskset -c 0) ;;
*) echo "PIN: none, same or split" >&2; exit 2 ;;
esac
cargo build -q --release --example broker --example loadgen
lg=target/release/examples/loadgen
. benches/common/procs.sh

drive() { # NAME PORT
    "${on_loadgen[@]}" "$lg" --port "$2" --publishers 1 --messages "$messages" \
        --subscribers 1 --window 1 --json | python3 -c "
import json, sys
d = json.load(sys.stdin)
l = d['latency_ms']
print('$1', round(d['msgs_per_sec']), round(l['p50'] * 1000, 1), round(l['p99'] * 1000, 1))" | tee -a "$tmp/runs"
}

run_ours() { # NAME BINARY
    "${on_broker[@]}" "$2" --listen 127.0.0.1:0 --profile mqtt311 \
        --max-inflight 100 --max-queued 100000 --write-queue 200000 >"$tmp/ours.out" 2>/dev/null &
    local ours=$!
    pids+=("$ours")
    for _ in $(seq 50); do
        grep -q "^listening on" "$tmp/ours.out" && break
        sleep 0.1
    done
    drive "$1" "$(sed -n 's/^listening on 127.0.0.1://p' "$tmp/ours.out")"
    kill "$ours"
    wait "$ours" 2>/dev/null || true
}

for _ in $(seq "$rounds"); do
    run_ours ours target/release/examples/broker
    if [ -n "${BEFORE:-}" ]; then
        run_ours before "$BEFORE"
    fi
    port=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
    printf 'max_inflight_messages 100\nmax_queued_messages 100000\nlistener %s 127.0.0.1\nallow_anonymous true\n' \
        "$port" >"$tmp/mosquitto.conf"
    "${on_broker[@]}" "$mosquitto" -c "$tmp/mosquitto.conf" >/dev/null 2>&1 &
    mosq=$!
    pids+=("$mosq")
    sleep 0.5
    drive mosquitto "$port"
    kill "$mosq"
    wait "$mosq" 2>/dev/null || true
done

python3 - "$tmp/runs" <<'EOF'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, rate, p50, p99 = line.split()
    runs[name].append((int(rate), float(p50), float(p99)))
for name, r in runs.items():
    med = [statistics.median(x[i] for x in r) for i in range(3)]
    print(f"{name}: median over {len(r)} runs: {med[0]:.0f} msgs/s, p50 {med[1]:.1f} us, p99 {med[2]:.1f} us")
# Round by round (each round runs the brokers one after the other): how often ours was
# at or below mosquitto, and the median difference.
pairs = list(zip(runs.get("ours", []), runs.get("mosquitto", [])))
for i, what in ((1, "p50"), (2, "p99")):
    if pairs:
        diff = [o[i] - m[i] for o, m in pairs]
        at_most = sum(d <= 0 for d in diff)
        print(f"{what}, ours - mosquitto round by round: median {statistics.median(diff):+.1f} us, "
              f"ours at or below in {at_most} of {len(diff)} rounds")
EOF
