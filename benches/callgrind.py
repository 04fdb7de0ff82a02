#!/usr/bin/env python3
"""Instructions per operation for mqtt-sansio and its peers, counted by callgrind: a
measure that does not depend on what else the machine is running.

Builds `benches/peers`' `ops` example, runs every workload through every crate under
`valgrind --tool=callgrind`, subtracts a baseline run that builds the same inputs, and
prints Markdown tables (decode, encode, and the zero-copy decoders again from a fresh
buffer per packet) with the ratio peer / ours, by the same rule as `report.py`. A
single-packet workload is one packet per call; mixed_4MiB is one stream, back to back.
Standard library only; needs valgrind.

Usage: python3 benches/callgrind.py [WORKLOAD ...]
"""

import os
import re
import subprocess
import sys

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


def instructions(workload, n, mode, fresh=False):
    env = dict(os.environ, FRESH="1" if fresh else "0")
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", EXE,
         workload, str(n), mode],
        capture_output=True, text=True, check=True, env=env,
    ).stderr
    return int(re.search(r"refs:\s+([\d,]+)", out).group(1).replace(",", ""))


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


def main():
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
