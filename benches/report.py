#!/usr/bin/env python3
"""Prints the peer comparison as Markdown tables: workload x crate, median time, and
the ratio peer / ours; then the issue's targets, one packet per call.

Reads the `new/estimates.json` (and `new/benchmark.json`) files that criterion wrote
under the peers package's target/criterion. Standard library only.

Usage: python3 benches/report.py [CRITERION_DIR ...]
       (default: benches/peers/target/criterion next to this script; with several
       directories, copies of it from several runs, each cell is the fastest median)
       python3 benches/report.py --state [CRITERION_DIR]
       (the state machine benches; default: target/criterion of the main crate)

Groups: `decode/W` and `encode/W` are one packet per call; `decode-b2b/W` and
`encode-b2b/W` are back to back (REPEAT copies per iteration, given per packet, and
the 4 MiB mixed stream).

Ratios compare like with like, by the form of the input: a peer that decodes from a
slice (mqttrs, mqtt-protocol) is divided by our borrowed `decode`; one that consumes a
`BytesMut` (rumqttc, ntex-mqtt) by both our zero-copy forms, `decode_bytes` (a `Bytes`
per field) and `decode_frame` (one `Bytes` per packet), shown as "bytes / frame".
Encoding is divided by our encode into the same kind of buffer: `BytesMut` for rumqttc,
`BytesMut` with large payloads as chunks of their own for ntex-mqtt (which does the
same), `Vec<u8>` for mqtt-protocol and mqttrs (which writes to a slice). A ratio above
1 means the peer is slower.
"""

import json
import os
import sys

OURS = "mqtt-sansio"
OURS_BYTES = "mqtt-sansio-bytes"
OURS_FRAME = "mqtt-sansio-frame"
OURS_VEC = "mqtt-sansio-vec"
OURS_CHUNKED = "mqtt-sansio-chunked"
PEERS = ["rumqttc", "ntex-mqtt", "mqttrs", "mqtt-protocol"]
# Which of our rows each peer is divided by, per operation.
BASELINE = {
    "decode": {"rumqttc": (OURS_BYTES, OURS_FRAME), "ntex-mqtt": (OURS_BYTES, OURS_FRAME),
               "mqttrs": OURS, "mqtt-protocol": OURS},
    # Encoding into the same kind of buffer: rumqttc writes to a BytesMut, ntex-mqtt to
    # pages that take large payloads as their own, mqtt-protocol to a Vec<u8>, mqttrs
    # to a slice (closest: the Vec).
    "encode": {"rumqttc": OURS, "ntex-mqtt": OURS_CHUNKED, "mqttrs": OURS_VEC,
               "mqtt-protocol": OURS_VEC},
}
OPS = ["decode", "encode", "decode-b2b", "encode-b2b"]
TITLE = {
    "decode": "decode, one packet per call",
    "encode": "encode, one packet per call",
    "decode-b2b": "decode, back to back (32 copies per iteration, per packet; the stream whole)",
    "encode-b2b": "encode, back to back (32 copies per iteration, per packet; the stream whole)",
}
# The peer comparison decodes REPEAT copies of each single-packet workload back to
# back per iteration (`REPEAT` in benches/common/workloads.rs); its decode cells are
# given per packet.
REPEAT = 32
STREAMS = {"mixed_4MiB"}
WORKLOADS = [
    "connect",
    "publish_qos0_16B",
    "publish_qos0_1KiB",
    "publish_qos0_64KiB",
    "publish_qos1_1KiB",
    "puback",
    "subscribe_10",
    "suback_10",
    "unsubscribe_3",
    "pingreq",
    "mixed_4MiB",
]


def load(root):
    """{(op, workload): {crate: (median_ns, rel_half_ci, bytes, elements)}}"""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) != "new" or "estimates.json" not in files:
            continue
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            bench = json.load(f)
        with open(os.path.join(dirpath, "estimates.json")) as f:
            est = json.load(f)
        group = bench["group_id"]
        if "/" not in group:
            continue
        op, workload = group.split("/", 1)
        med = est["median"]
        ci = med["confidence_interval"]
        point = med["point_estimate"]
        half = (ci["upper_bound"] - ci["lower_bound"]) / 2 / point if point else 0.0
        tp = bench.get("throughput") or {}
        size = tp.get("Bytes")
        elements = tp.get("Elements")
        out.setdefault((op, workload), {})[bench["function_id"]] = (point, half, size, elements)
    return out


def fmt_time(ns):
    if ns < 1e3:
        return f"{ns:.1f} ns"
    if ns < 1e6:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns / 1e6:.2f} ms"


def fmt_size(n):
    if n is None:
        return "?"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.0f} MiB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.1f} KiB"
    return f"{n} B"


def table(data, op):
    kind = op.split("-")[0]
    cols = (["memcpy", OURS, OURS_BYTES, OURS_FRAME] if kind == "decode"
            else [OURS, OURS_VEC, OURS_CHUNKED]) + PEERS
    head = ["workload", "size"] + cols + ["ours GiB/s", "noise ±"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    names = WORKLOADS + sorted({w for (o, w) in data if o == op} - set(WORKLOADS))
    for w in names:
        row = data.get((op, w))
        if not row:
            continue
        rep = REPEAT if op.endswith("-b2b") and w not in STREAMS else 1
        size = next((v[2] for v in row.values() if v[2]), None)
        size = size // rep if size else size
        cells = [w, fmt_size(size)]
        for c in cols:
            if c not in row:
                cells.append("–")
                continue
            t = row[c][0] / rep
            cell = fmt_time(t)
            bases = BASELINE[kind].get(c) or ()
            bases = (bases,) if isinstance(bases, str) else bases
            ratios = [f"{row[c][0] / row[b][0]:.2f}×" for b in bases if b in row]
            if ratios:
                cell += f" ({' / '.join(ratios)})"
            cells.append(cell)
        ours = min(row[c][0] for c in (OURS, OURS_BYTES, OURS_FRAME, OURS_VEC, OURS_CHUNKED)
                   if c in row) / rep
        cells.append(f"{size / ours * 1e9 / (1 << 30):.2f}" if size else "?")
        cells.append(f"{max(v[1] for v in row.values()) * 100:.1f}%")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def state_report(root):
    data = load(root)
    rows = sorted((k, v) for k, v in data.items() if k[0] in STATE_GROUPS)
    if not rows:
        sys.exit(f"no state benchmarks under {root}: run `cargo bench --bench state` first")
    print("| group | case | median | per element | per second | noise ± |")
    print("|---|---|---|---|---|---|")
    for (op, group), cases in rows:
        for case in sorted(cases, key=lambda c: (len(c), c)):
            t, half, size, elements = cases[case]
            if size:
                rate = fmt_rate(size / (t / 1e9), "bytes")
                each = "–"
            else:
                rate = fmt_rate((elements or 1) / (t / 1e9), STATE_UNIT.get(op, "ops"))
                each = fmt_time(t / (elements or 1))
            print(f"| {op}/{group} | {case} | {fmt_time(t)} | {each} | {rate} | "
                  f"{half * 100:.1f}% |")
    idx = data.get(("index", "match_one_topic"), {})
    if idx:
        by_n = sorted((leading_number(c), v[0]) for c, v in idx.items())
        (n0, t0), (n1, t1) = by_n[0], by_n[-1]
        print()
        print(f"Index: matching among {n1:,} filters takes {t1 / t0:.2f}× the time "
              f"of matching among {n0:,} ({n1 // n0:,}× the filters).")


STATE_GROUPS = {"client", "server", "broker", "index"}
# What an element of each group's throughput is.
STATE_UNIT = {"client": "messages", "broker": "deliveries", "index": "matches"}


def leading_number(name):
    digits = ""
    for ch in name:
        if ch.isdigit():
            digits += ch
        elif digits:
            break
    return int(digits) if digits else 1


def fmt_rate(r, unit):
    if unit == "bytes":
        return f"{r / (1 << 30):.2f} GiB/s"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if r >= div:
            return f"{r / div:.2f} {suffix} {unit}/s"
    return f"{r:.0f} {unit}/s"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    if len(sys.argv) > 1 and sys.argv[1] == "--state":
        root = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "target", "criterion")
        return state_report(root)
    roots = sys.argv[1:] or [os.path.join(here, "peers", "target", "criterion")]
    data = {}
    for root in roots:
        if not os.path.isdir(root):
            sys.exit(f"no criterion output at {root}: run `cargo bench` in benches/peers first")
        # Several runs (copies of target/criterion): keep each cell's fastest median,
        # the least disturbed by other load on the machine.
        for key, cells in load(root).items():
            best = data.setdefault(key, {})
            for crate, v in cells.items():
                if crate not in best or v[0] < best[crate][0]:
                    best[crate] = v
    if not data:
        sys.exit(f"no estimates.json under {roots}")
    print(targets(data))
    print()
    for op in OPS:
        print(f"### {TITLE[op]}\n")
        print(table(data, op))
        print()
    print(
        "Median of criterion's samples. Ratio = peer ÷ ours (above 1: the peer is slower); "
        "decode ratios divide the peers that read a slice (mqttrs, mqtt-protocol) by "
        "`decode` and the ones that consume a `BytesMut` (rumqttc, ntex-mqtt) by "
        "`decode_bytes` and by `decode_frame` (\"bytes / frame\"). `ours GiB/s` is the "
        "fastest of our forms. `noise ±` is the widest 95% confidence half-interval of "
        "the median in the row."
    )


def targets(data):
    """The targets, one packet per call: borrowed decode against mqttrs (at least 1.5x),
    encode against the fastest peer into the same kind of buffer (at least 1x)."""
    lines = [
        "### targets, one packet per call\n",
        "| workload | decode: mqttrs ÷ ours (≥ 1.5) | encode into a Vec: fastest peer ÷ ours (≥ 1) "
        "| encode into a BytesMut: fastest peer ÷ ours (≥ 1) |",
        "|---|---|---|---|",
    ]
    for w in WORKLOADS:
        d, e = data.get(("decode", w)), data.get(("encode", w))
        if not d or not e:
            continue
        cells = [w]
        cells.append(f"{d['mqttrs'][0] / d[OURS][0]:.2f}" if "mqttrs" in d and OURS in d else "–")
        vec = [(e[p][0] / e[OURS_VEC][0], p) for p in ("mqttrs", "mqtt-protocol")
               if p in e and OURS_VEC in e]
        cells.append(f"{min(vec)[0]:.2f} ({min(vec)[1]})" if vec else "–")
        bm = [(e[p][0] / e[BASELINE["encode"][p]][0], p) for p in ("rumqttc", "ntex-mqtt")
              if p in e and BASELINE["encode"][p] in e]
        cells.append(f"{min(bm)[0]:.2f} ({min(bm)[1]})" if bm else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
