#!/usr/bin/env bash
# Fuzzing in CI: installs cargo-fuzz if missing, seeds the corpus, builds every target
# and runs each for a bounded time. Any crash, leak, timeout or failed check fails the
# run; libFuzzer leaves the input in fuzz/artifacts/<target>/.
#
# FUZZ_SECONDS (default 45) is the time per target.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-45}"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: installing the nightly toolchain"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

bash fuzz/seed.sh
cargo +nightly fuzz build

targets=$(cargo +nightly fuzz list)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
count=0
for target in $targets; do
    args=(-max_total_time="$seconds" -timeout=20 -print_final_stats=1)
    if [ "$target" = decode ]; then
        args+=(-dict="$PWD/fuzz/mqtt.dict")
    fi
    # Operation sequences past 2 KiB add little but time per execution.
    case "$target" in client|server|broker) args+=(-max_len=2048) ;; esac
    echo "== fuzz $target for ${seconds}s"
    mkdir -p "fuzz/corpus/$target"
    if ! cargo +nightly fuzz run "$target" "fuzz/corpus/$target" -- "${args[@]}" >"$log" 2>&1; then
        tail -n 80 "$log"
        echo "fuzz: $target FAILED (the input is saved under fuzz/artifacts/$target/)"
        exit 1
    fi
    grep -E 'DONE|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
    count=$((count + 1))
done
echo "fuzz: $count passed, 0 failed"
