#!/usr/bin/env python3
"""Instructions per operation for mqtt-sansio and its peers, counted by callgrind: a
measure that does not depend on what else the machine is running.

Builds `benches/peers`' `ops` example, runs every workload through every crate under
`valgrind --tool=callgrind`, subtracts a baseline run that builds the same inputs, and
prints Markdown tables (decode, encode, and the zero-copy decoders again from a fresh
buffer per packet) with the ratio peer / ours, by the same rule as `report.py`. A
single-packet workload is one packet per call; mixed_4MiB is one stream, back to back.
Standard library only; needs valgrind.

With `--state`, it counts the state machines instead: `examples/state_ops.rs` runs a
workload of `benches/state.rs` (the client's publish round trip, the broker's fan-out of
one QoS 0 PUBLISH to 1, 100 or 10 000 subscribers) N times and 0 times (the same setup,
nothing done), and the difference divided by N is one operation. `--before DIR` builds
the same driver in another checkout of the crate (copied into DIR/examples and built
in DIR/target; for example `git worktree add /tmp/base COMMIT`) and prints both counts
and their ratio. `--cache` adds callgrind's cache simulation with a stated geometry
(`CACHE_SIM`: 32 KiB 8-way first-level data cache, 4 MiB 16-way last level, the L2 of
the machine the results were taken on, rather than whatever the VM reports) and prints
the first-level and last-level data-cache misses per operation as well.

Usage: python3 benches/callgrind.py [WORKLOAD ...]
       python3 benches/callgrind.py --state [--before DIR] [--cache] [WORKLOAD ...]
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

WORKLOADS = [
    "connect", "publish_qos0_16B", "publish_qos0_1KiB", "publish_qos0_64KiB",
    "publish_qos1_1KiB", "puback", "subscribe_10", "suback_10", "unsubscribe_3",
    "pingreq", "mixed_4MiB",
]
DECODE = ["ours", "ours-bytes", "ours-frame", "rumqttc", "ntex-mqtt", "mqttrs", "mqtt-protocol"]
ZERO_COPY = ("ours-bytes", "ours-frame", "rumqttc", "ntex-mqtt")
ENCODE = ["enc-ours", "enc-ours-vec", "enc-ours-chunked", "enc-rumqttc", "enc-ntex-mqtt",
          "enc-mqttrs", "enc-mqtt-protocol"]
# Encoders are divided by ours into the same kind of buffer (see report.py).
ENC_BASE = {"rumqttc": "enc-ours", "ntex-mqtt": "enc-ours-chunked", "mqttrs": "enc-ours-vec",
            "mqtt-protocol": "enc-ours-vec"}
# The form of ours each peer is divided by (see report.py).
BASE = {"rumqttc": ("ours-bytes", "ours-frame"), "ntex-mqtt": ("ours-bytes", "ours-frame"),
        "mqttrs": ("ours",), "mqtt-protocol": ("ours",)}
# The baseline run each mode's count is reduced by: the same inputs built, nothing done.
BASELINE_MODE = {m: "bufs" for m in ZERO_COPY}
BASELINE_MODE["ntex-mqtt"] = "ntex-bufs"

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.join(HERE, "peers")
EXE = os.path.join(PEERS, "target", "release", "examples", "ops")


CACHE_SIM = ["--cache-sim=yes", "--D1=32768,8,64", "--LL=4194304,16,64"]


def counts_of(cmd, env=None, cache=False):
    """What callgrind counts for running `cmd`: instructions, and with `cache` the
    first-level and last-level data-cache misses (reads and writes)."""
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
        + (CACHE_SIM if cache else []) + cmd,
        capture_output=True, text=True, check=True, env=env,
    ).stderr
    num = lambda pattern: int(re.search(pattern, out).group(1).replace(",", ""))
    counts = [num(r"I\s+refs:\s+([\d,]+)")]
    if cache:
        counts += [num(r"D1\s+misses:\s+([\d,]+)"), num(r"LLd misses:\s+([\d,]+)")]
    return counts


def instructions_of(cmd, env=None):
    """The instructions callgrind counts for running `cmd`."""
    return counts_of(cmd, env)[0]


def instructions(workload, n, mode, fresh=False):
    env = dict(os.environ, FRESH="1" if fresh else "0")
    return instructions_of([EXE, workload, str(n), mode], env)


def per_op(workload, mode, fresh=False):
    n = 4 if workload == "mixed_4MiB" else 200
    if mode == "enc-ntex-mqtt":
        # Its encoder consumes the packets: the baseline makes the same clones.
        base = instructions(workload, n, "ntex-clones")
    elif mode.startswith("enc-"):
        base = instructions(workload, 0, mode)
    else:
        base = instructions(workload, n, BASELINE_MODE.get(mode, "noop"), fresh)
    return (instructions(workload, n, mode, fresh) - base) / n


STATE_WORKLOADS = {"client_qos0": 2000, "client_qos1": 2000, "fanout_1": 2000,
                   "fanout_100": 200, "fanout_10000": 10, "window1_qos1": 2000}
# What one operation of each state workload is, for the table.
STATE_OP = {"client_qos0": "one message", "client_qos1": "one message (PUBLISH, PUBACK, event)",
            "window1_qos1": "one QoS 1 message through the broker (PUBLISH in, PUBACK and delivery encoded, PUBACK in)"}
DRIVER = "state_ops"


def build_driver(tree, out_dir, name):
    """Builds examples/state_ops.rs of this checkout in `tree`; returns the executable,
    copied to `out_dir` as `name`."""
    tree = os.path.abspath(tree)
    src = os.path.join(HERE, "..", "examples", DRIVER + ".rs")
    dst = os.path.join(tree, "examples", DRIVER + ".rs")
    if not os.path.exists(dst) or not os.path.samefile(src, dst):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(src, "rb") as f, open(dst, "wb") as g:
            g.write(f.read())
    # Each checkout builds in its own target directory: in a shared one, cargo would
    # take the other checkout's build of the same package for fresh.
    target = os.path.join(tree, "target")
    env = dict(os.environ, CARGO_TARGET_DIR=target)
    subprocess.run(["cargo", "build", "--release", "-p", "mqtt-sansio", "--example", DRIVER],
                   cwd=tree, check=True, env=env)
    exe = os.path.join(out_dir, name)
    shutil.copy2(os.path.join(target, "release", "examples", DRIVER), exe)
    return exe


def state_per_op(exe, workload, cache=False):
    """Instructions per operation, and with `cache` [instructions, D1 misses, LLd
    misses] per operation."""
    n = STATE_WORKLOADS.get(workload, 200)
    run = lambda k: counts_of([exe, workload, str(k)], cache=cache)
    per = [(a - b) / n for a, b in zip(run(n), run(0))]
    return per if cache else per[0]


def state_main(args):
    before = None
    if "--before" in args:
        i = args.index("--before")
        before = args[i + 1]
        args = args[:i] + args[i + 2:]
    cache = "--cache" in args
    args = [a for a in args if a != "--cache"]
    workloads = args or list(STATE_WORKLOADS)
    with tempfile.TemporaryDirectory(prefix="state-ops-") as tmp:
        after_exe = build_driver(os.path.join(HERE, ".."), tmp, "after")
        before_exe = build_driver(before, tmp, "before") if before else None
        state_table(workloads, before_exe, after_exe)
        if cache:
            cache_table(workloads, before_exe, after_exe)


def cache_table(workloads, before_exe, after_exe):
    """Per subscriber (per operation for the client workloads): instructions, D1 and
    LLd misses, before and after."""
    print(f"\nCache simulation ({' '.join(CACHE_SIM)}), per subscriber:\n")
    runs = [("before", before_exe)] if before_exe else []
    runs.append(("after" if before_exe else "now", after_exe))
    print("| workload | " + " | ".join(f"{name}: instructions | {name}: D1 misses | "
                                       f"{name}: LLd misses" for name, _ in runs) + " |")
    print("|---|" + "---|---|---|" * len(runs))
    for w in workloads:
        per = int(w[len("fanout_"):]) if w.startswith("fanout_") else 1
        cells = [w]
        for _, exe in runs:
            ir, d1, ll = (v / per for v in state_per_op(exe, w, cache=True))
            cells += [f"{ir:,.0f}", f"{d1:.1f}", f"{ll:.2f}"]
        print("| " + " | ".join(cells) + " |", flush=True)


def state_table(workloads, before_exe, after_exe):
    fmt = lambda v: f"{v:,.0f}"
    if before_exe:
        print("| workload | operation | before | after | after ÷ before | after, per subscriber |")
        print("|---|---|---|---|---|---|")
    else:
        print("| workload | operation | instructions | per subscriber |")
        print("|---|---|---|---|")
    for w in workloads:
        subscribers = int(w[len("fanout_"):]) if w.startswith("fanout_") else None
        plural = "" if subscribers == 1 else "s"
        op = STATE_OP.get(w, f"one PUBLISH to {subscribers:,} subscriber{plural}"
                          if subscribers else w)
        a = state_per_op(after_exe, w)
        cells = [w, op]
        if before_exe:
            b = state_per_op(before_exe, w)
            cells += [fmt(b), fmt(a), f"{a / b:.3f}"]
        else:
            cells.append(fmt(a))
        cells.append(fmt(a / subscribers) if subscribers else "–")
        print("| " + " | ".join(cells) + " |", flush=True)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--state":
        return state_main(sys.argv[2:])
    subprocess.run(["cargo", "build", "--release", "--example", "ops"], cwd=PEERS, check=True)
    workloads = sys.argv[1:] or WORKLOADS
    c = {(w, m): per_op(w, m) for w in workloads for m in DECODE + ENCODE}
    fmt = lambda v: f"{v:,.0f}"
    ratio = lambda w, p, fc=c: " / ".join(f"{fc[(w, p)] / fc[(w, b)]:.2f}×" for b in BASE[p])
    print("### decode, instructions per packet (per stream for mixed_4MiB)\n")
    print("| workload | mqtt-sansio | mqtt-sansio-bytes | mqtt-sansio-frame | rumqttc | ntex-mqtt | mqttrs | mqtt-protocol |")
    print("|---|---|---|---|---|---|---|---|")
    for w in workloads:
        cells = [fmt(c[(w, m)]) for m in ("ours", "ours-bytes", "ours-frame")]
        for p in ("rumqttc", "ntex-mqtt", "mqttrs", "mqtt-protocol"):
            cells.append(f"{fmt(c[(w, p)])} ({ratio(w, p)})")
        print(f"| {w} | " + " | ".join(cells) + " |")
    singles = [w for w in workloads if w != "mixed_4MiB"]
    if singles:
        f = {(w, m): per_op(w, m, fresh=True) for w in singles for m in ZERO_COPY}
        print("\n### zero-copy decode from a fresh `BytesMut` per packet (its first split allocates)\n")
        print("| workload | mqtt-sansio-bytes | mqtt-sansio-frame | rumqttc | ntex-mqtt |")
        print("|---|---|---|---|---|")
        for w in singles:
            cells = [fmt(f[(w, "ours-bytes")]), fmt(f[(w, "ours-frame")])]
            for p in ("rumqttc", "ntex-mqtt"):
                cells.append(f"{fmt(f[(w, p)])} ({ratio(w, p, f)})")
            print(f"| {w} | " + " | ".join(cells) + " |")
    print("\n### encode, instructions per packet (per stream for mixed_4MiB)\n")
    print("| workload | mqtt-sansio | mqtt-sansio-vec | mqtt-sansio-chunked | rumqttc | ntex-mqtt | mqttrs | mqtt-protocol |")
    print("|---|---|---|---|---|---|---|---|")
    for w in workloads:
        cells = [fmt(c[(w, m)]) for m in ("enc-ours", "enc-ours-vec", "enc-ours-chunked")] + [
            f"{fmt(c[(w, 'enc-' + p)])} ({c[(w, 'enc-' + p)] / c[(w, ENC_BASE[p])]:.2f}×)"
            for p in ("rumqttc", "ntex-mqtt", "mqttrs", "mqtt-protocol")
        ]
        print(f"| {w} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
