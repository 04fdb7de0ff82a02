#!/usr/bin/env bash
# The conformance checker (examples/conformance) against this crate's decoder and TCP
# broker, and against mosquitto. Every broker listens on 127.0.0.1 on a free port and is
# stopped by PID on exit; every checker run is bounded by `timeout`.
#
#   codec mode vs examples/decode                        all must pass
#   broker mode vs examples/broker, mqtt311, aws-iot
#     and aws-iot-2025                                   all must pass
#   broker mode vs examples/broker configured as the
#     setup of four vectors says                         all must pass
#   broker mode vs mosquitto, mqtt311 (and configured
#     with credentials)                                  only failures listed in
#                                                        tests/fixtures/conformance-mosquitto-2.0.11.json
#
# mosquitto missing: that part is skipped, or fails under MQTT_INTEROP=1.
set -euo pipefail
cd "$(dirname "$0")/.."

FIXTURE=tests/fixtures/conformance-mosquitto-2.0.11.json
MOSQUITTO=${MOSQUITTO:-/usr/sbin/mosquitto}
BIN=target/debug/examples
TMP=$(mktemp -d)
PIDS=()

stop_all() {
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap stop_all EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
    python3 - "$1" <<'EOF'
import socket, sys, time
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit("nothing listens on port " + sys.argv[1])
EOF
}

# start_example NAME ARGS...: the example broker on a free port; sets PORT.
start_example() {
    local name=$1
    shift
    PORT=$(free_port)
    "$BIN/broker" --listen "127.0.0.1:$PORT" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    PIDS+=($!)
    wait_port "$PORT"
}

# start_mosquitto NAME CONFIG-LINES: mosquitto on a free port; sets PORT.
start_mosquitto() {
    local name=$1
    PORT=$(free_port)
    printf 'listener %s 127.0.0.1\npersistence false\n%s\n' "$PORT" "$2" >"$TMP/$name.conf"
    "$MOSQUITTO" -c "$TMP/$name.conf" >"$TMP/$name.log" 2>&1 &
    PIDS+=($!)
    wait_port "$PORT"
}

check() {
    timeout 120 "$BIN/conformance" "$@"
}

cargo build --quiet --example conformance --example decode --example broker

# must_fail WHAT ARGS...: the checker must report a failure (it notices a wrong answer).
must_fail() {
    local what=$1
    shift
    if check "$@" >"$TMP/must-fail.out"; then
        cat "$TMP/must-fail.out"
        echo "the checker passed $what" >&2
        exit 1
    fi
    grep '^FAIL' "$TMP/must-fail.out" | head -n 3
}

echo "== conformance: codec vectors vs examples/decode"
check codec --decoder "$BIN/decode"
echo "== conformance: a decoder that mistakes PUBACK for PUBREC fails"
must_fail "a wrong decoder" codec --decoder "$BIN/decode | sed s/PUBACK/PUBREC/" --only pub_acks/puback-1

for profile in mqtt311 aws-iot-2025 aws-iot; do
    echo "== conformance: broker vectors vs examples/broker --profile $profile"
    start_example "example-$profile" --profile "$profile"
    check broker --host 127.0.0.1 --port "$PORT" --profile "$profile"
done

echo "== conformance: an AWS IoT dialect broker fails an MQTT 3.1.1 vector"
must_fail "an aws-iot broker on mqtt311 vectors" broker --host 127.0.0.1 --port "$PORT" \
    --only hash-matches-the-parent-level
echo "== conformance: the seed's AWS dialect fails a vector of AWS IoT Core today"
must_fail "an aws-iot broker on aws-iot-2025 vectors" broker --host 127.0.0.1 --port "$PORT" \
    --only aws2025-retained-message-goes-only-to-an-exact-filter
echo "== conformance: AWS IoT Core today fails a vector of the seed's AWS dialect"
start_example example-aws-iot-2025-again --profile aws-iot-2025
must_fail "an aws-iot-2025 broker on aws-iot vectors" broker --host 127.0.0.1 --port "$PORT" \
    --only aws-retained-publish-closes-the-connection

echo "== conformance: configured broker vectors vs examples/broker"
start_example example-setup --max-queued 2 --deny-subscribe 'cfg-secret/#' --deny-publish cfg-deny/x
check broker --host 127.0.0.1 --port "$PORT" --prefix cfg- --only \
    offline-queue-bound-drops-beyond-it suback-failure-code-for-a-refused-filter \
    unauthorized-publish-is-acked-or-closed

echo "== conformance: the QoS 1 retry limit vs examples/broker --profile aws-iot-2025 --qos1-retry-ms 2000"
start_example example-retry --profile aws-iot-2025 --qos1-retry-ms 2000
check broker --host 127.0.0.1 --port "$PORT" --profile aws-iot-2025 --prefix rl- --only \
    aws2025-qos1-retry-limit-is-configurable

if [ ! -x "$MOSQUITTO" ]; then
    if [ "${MQTT_INTEROP:-}" = 1 ]; then
        echo "$MOSQUITTO is not installed (MQTT_INTEROP=1 requires it)" >&2
        exit 1
    fi
    echo "== conformance: $MOSQUITTO is not installed, mosquitto skipped"
    exit 0
fi

echo "== conformance: broker vectors vs mosquitto ($("$MOSQUITTO" -h 2>/dev/null | head -n 1 || true))"
start_mosquitto mosquitto 'allow_anonymous true'
check broker --host 127.0.0.1 --port "$PORT" --profile mqtt311 --prefix cf- \
    --known "$FIXTURE" --json "$TMP/mosquitto.json"

if ! command -v mosquitto_passwd >/dev/null; then
    echo "== conformance: mosquitto_passwd is not installed, credential vectors skipped"
    exit 0
fi
echo "== conformance: credential vectors vs mosquitto with a password file"
mosquitto_passwd -c -b "$TMP/passwords" user secret
# mosquitto started as root reads its files as user mosquitto.
chmod 755 "$TMP"
chmod 644 "$TMP/passwords"
start_mosquitto mosquitto-credentials "allow_anonymous false
password_file $TMP/passwords"
check broker --host 127.0.0.1 --port "$PORT" --prefix cfg- --only \
    bad-password-is-refused-and-closed missing-credentials-are-refused-and-closed
