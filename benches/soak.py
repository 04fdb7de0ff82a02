#!/usr/bin/env python3
"""Soak: the release example broker under mixed traffic and client churn for a while,
with its resident memory, threads, open files and responsiveness sampled throughout.

Starts `target/release/examples/broker` (built here with `cargo build --release
--example broker`; `--broker PATH` runs another binary instead) on a free 127.0.0.1 port with `--profile mqtt311` (plus any
`--broker-arg`), and for `--duration` seconds runs, all from this process:

- churn: `--churn` slots, each in a loop connecting a paho client under one of
  `--ids` client ids (clean or persistent session at random; a fifth of the time an id
  that is connected at that moment, so the broker takes the session over), maybe
  subscribing to a narrow filter (sometimes the retained topics), maybe publishing a
  few messages, holding the connection 0.5–10 s, then ending it with DISCONNECT or by
  closing the socket;
- three publishers, QoS 0, 1 and 2, at `--rate` messages/s in total (4:2:1), on topics
  `soak/<a..d>/<0..9>`;
- four subscribers with wildcards (`soak/#` QoS 1, `soak/+/3` QoS 0, `soak/a/#` QoS 2,
  `soak/+/+` QoS 1) that read everything;
- `--slow` slow readers: raw sockets (4 KiB receive buffer) with persistent sessions
  subscribed to `soak/#` at QoS 1 and `soak/+/3` at QoS 0 that read 512 bytes every
  2 s and never acknowledge; when the broker closes one, it reconnects;
- a retainer setting retained messages on `soak/ret/<0..499>` and clearing them (empty
  retained payload), a few a second;
- a health client (raw socket, keep alive 0) sending PINGREQ every 2 s and timing the
  PINGRESP.

Every `--interval` seconds (30) it samples the broker's VmRSS (/proc/PID/status), its
thread count, its open file descriptors, the last ping round trip and the largest
since the last sample, and the traffic counters, appending a row to
`<out>/soak.csv`. At the end it stops the broker by its PID (SIGTERM, then SIGKILL)
and writes `<out>/summary.txt`: the first, last, min and max RSS after `--warmup`
seconds, the RSS slope per 10 minutes (least squares over the samples after warm-up),
the largest ping round trip, and the counters. The broker's stderr goes to
`<out>/broker.log` (RUST_LOG=error unless set: at `warn` every message dropped for a
slow reader is a line). SIGINT or SIGTERM ends the run early, with the summary; the
summary so far is also rewritten after every sample.

    python3 benches/soak.py --duration 3600 --out /work/soak-out

Needs paho-mqtt (2.x). The load is modest on purpose (a few hundred messages/s in,
about two thousand out) so that it can run beside other work on a small machine.
"""

import argparse
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "interop"))
from rawmqtt import connect_packet, read_exact, subscribe_packet  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BROKER = os.path.join(ROOT, "target", "release", "examples", "broker")
HOST = "127.0.0.1"
TOPICS = [f"soak/{a}/{n}" for a in "abcd" for n in range(10)]
RETAINED = 500


class Counters:
    """Traffic counters shared by every thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.c = {
            "connects": 0,
            "connect_failures": 0,
            "takeovers": 0,
            "published": 0,
            "received": 0,
            "slow_reconnects": 0,
            "publisher_reconnects": 0,
            "retained_set": 0,
            "retained_cleared": 0,
        }

    def add(self, key, n=1):
        with self.lock:
            self.c[key] += n

    def snapshot(self):
        with self.lock:
            return dict(self.c)


# ---- raw MQTT for the health client and the slow readers -----------------------------


def raw_connect(port, client_id, clean, timeout=10.0, rcvbuf=None):
    """A socket past its CONNACK (return code 0); `rcvbuf`: a small receive buffer."""
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect((HOST, port))
    sock.sendall(connect_packet(client_id, clean))
    ack = read_exact(sock, 4)
    if ack[0] != 0x20 or ack[3] != 0:
        sock.close()
        raise ConnectionError(f"CONNACK {ack.hex()}")
    return sock


# ---- the broker ------------------------------------------------------------------------


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def start_broker(binary, extra, log_path):
    env = dict(os.environ)
    # Not `warn`: the slow readers' sessions overflow by design, one warning per drop.
    env.setdefault("RUST_LOG", "error")
    log = open(log_path, "wb")
    p = subprocess.Popen(
        [binary, "--listen", f"{HOST}:0", "--profile", "mqtt311", *extra],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        env=env,
    )
    line = p.stdout.readline().decode()
    if not line.startswith("listening on "):
        p.kill()
        sys.exit(f"the broker did not start: {line!r} (see {log_path})")
    return p, int(line.rsplit(":", 1)[1])


def stop_broker(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    return p.returncode


# ---- the workload ----------------------------------------------------------------------


def paho_client(client_id, clean, counters):
    c = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean,
        protocol=mqtt.MQTTv311,
        reconnect_on_failure=False,
    )
    c.on_message = lambda cl, u, m: counters.add("received")
    return c


class Soak:
    def __init__(self, port, args, counters):
        self.port = port
        self.args = args
        self.counters = counters
        self.stop = threading.Event()
        self.connected = set()
        self.connected_lock = threading.Lock()
        self.ping_last = None
        self.ping_max = 0.0
        self.ping_max_all = 0.0
        self.ping_failures = 0
        self.ping_lock = threading.Lock()
        self.threads = []

    def spawn(self, target, *a):
        t = threading.Thread(target=target, args=a, daemon=True)
        t.start()
        self.threads.append(t)

    def start(self):
        self.spawn(self.health)
        for i, (f, q) in enumerate([("soak/#", 1), ("soak/+/3", 0), ("soak/a/#", 2), ("soak/+/+", 1)]):
            self.spawn(self.subscriber, f"sub-{i}", f, q)
        for qos, share in ((0, 4), (1, 2), (2, 1)):
            self.spawn(self.publisher, qos, self.args.rate * share / 7)
        for i in range(self.args.slow):
            self.spawn(self.slow_reader, f"slow-{i}")
        self.spawn(self.retainer)
        for i in range(self.args.churn):
            self.spawn(self.churner, random.Random(i))

    def health(self):
        sock = None
        while not self.stop.is_set():
            try:
                if sock is None:
                    sock = raw_connect(self.port, "soak-health", True)
                t0 = time.monotonic()
                sock.sendall(b"\xc0\x00")
                if read_exact(sock, 2) != b"\xd0\x00":
                    raise ConnectionError("not a PINGRESP")
                rtt = time.monotonic() - t0
                with self.ping_lock:
                    self.ping_last = rtt
                    self.ping_max = max(self.ping_max, rtt)
                    self.ping_max_all = max(self.ping_max_all, rtt)
            except OSError:
                with self.ping_lock:
                    self.ping_failures += 1
                if sock is not None:
                    sock.close()
                sock = None
            self.stop.wait(2.0)
        if sock is not None:
            sock.close()

    def take_ping(self):
        with self.ping_lock:
            last, mx = self.ping_last, self.ping_max
            self.ping_max = 0.0
        return last, mx

    def subscriber(self, client_id, filt, qos):
        while not self.stop.is_set():
            c = paho_client(client_id, True, self.counters)
            done = threading.Event()
            c.on_disconnect = lambda *a: done.set()
            c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(filt, qos)
            try:
                c.connect(HOST, self.port, keepalive=60)
            except OSError:
                self.stop.wait(1.0)
                continue
            c.loop_start()
            while not self.stop.is_set() and not done.wait(1.0):
                pass
            c.disconnect()
            c.loop_stop()

    def publisher(self, qos, rate):
        tick, n = 0.1, 0
        per_tick = rate * tick
        owed = 0.0
        c = None
        while not self.stop.wait(tick):
            if c is None:
                c = paho_client(f"pub-{qos}", True, self.counters)
                c.max_queued_messages_set(1000)
                try:
                    c.connect(HOST, self.port, keepalive=60)
                except OSError:
                    c = None
                    self.counters.add("connect_failures")
                    continue
                c.loop_start()
            owed += per_tick
            while owed >= 1:
                owed -= 1
                info = c.publish(TOPICS[n % len(TOPICS)], f"q{qos} {n}".ljust(64, "."), qos)
                n += 1
                if info.rc == mqtt.MQTT_ERR_SUCCESS:
                    self.counters.add("published")
                elif info.rc == mqtt.MQTT_ERR_NO_CONN:
                    self.counters.add("publisher_reconnects")
                    c.loop_stop()
                    c = None
                    owed = 0.0
                    break
        if c is not None:
            c.disconnect()
            c.loop_stop()

    def slow_reader(self, client_id):
        while not self.stop.is_set():
            sock = None
            try:
                sock = raw_connect(self.port, client_id, False, rcvbuf=4096)
                sock.sendall(subscribe_packet(1, [("soak/#", 1), ("soak/+/3", 0)]))
                sock.settimeout(5.0)
                while not self.stop.wait(2.0):
                    if not sock.recv(512):
                        break
            except OSError:
                pass
            finally:
                if sock is not None:
                    sock.close()
            if not self.stop.is_set():
                self.counters.add("slow_reconnects")
                self.stop.wait(1.0)

    def retainer(self):
        c = paho_client("soak-retainer", True, self.counters)
        c.connect(HOST, self.port, keepalive=60)
        c.loop_start()
        rng = random.Random(7)
        while not self.stop.wait(0.25):
            k = rng.randrange(RETAINED)
            if rng.random() < 0.6:
                c.publish(f"soak/ret/{k}", f"retained {k} {time.time():.0f}", 1, retain=True)
                self.counters.add("retained_set")
            else:
                c.publish(f"soak/ret/{k}", b"", 1, retain=True)
                self.counters.add("retained_cleared")
        c.disconnect()
        c.loop_stop()

    def churner(self, rng):
        while not self.stop.is_set():
            with self.connected_lock:
                live = sorted(self.connected)
            if live and rng.random() < 0.2:
                client_id = rng.choice(live)
                self.counters.add("takeovers")
            else:
                client_id = f"churn-{rng.randrange(self.args.ids)}"
            clean = rng.random() < 0.5
            c = paho_client(client_id, clean, self.counters)
            try:
                c.connect(HOST, self.port, keepalive=30)
            except OSError:
                self.counters.add("connect_failures")
                self.stop.wait(1.0)
                continue
            c.loop_start()
            self.counters.add("connects")
            with self.connected_lock:
                self.connected.add(client_id)
            roll = rng.random()
            if roll < 0.1:
                c.subscribe("soak/ret/+", 1)
            elif roll < 0.6:
                c.subscribe(f"soak/{rng.choice('abcd')}/{rng.randrange(10)}", rng.randrange(3))
            for _ in range(rng.randrange(4)):
                c.publish(f"soak/churn/{client_id}", b"hello", rng.randrange(3))
                self.counters.add("published")
            self.stop.wait(rng.uniform(0.5, 10.0))
            with self.connected_lock:
                self.connected.discard(client_id)
            if rng.random() < 0.5:
                c.disconnect()
                c.loop_stop()
            else:
                c.loop_stop()
                sock = c.socket()
                if sock is not None:
                    sock.close()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=15)


def summary(args, rows, ran, soak, counters, crashed, rc, final):
    """Writes `<out>/summary.txt` and returns its text."""
    after = [(t, r) for t, r, _, _ in rows if t >= args.warmup]
    snap = counters.snapshot()
    lines = [
        f"ran {ran:.0f} s ({len(rows)} samples every {args.interval:.0f} s); warm-up {args.warmup:.0f} s",
        f"broker: {'exited with ' + str(crashed) + ' during the run' if crashed is not None else 'running until the end' if final else 'running (the run ended early or is not over)'}; exit status at stop {rc}",
    ]
    if after:
        rs = [r for _, r in after]
        slope = slope_per_10min(after)
        lines.append(
            f"RSS after warm-up (KiB): first {rs[0]} last {rs[-1]} min {min(rs)} max {max(rs)} "
            f"slope {'n/a' if slope is None else f'{slope:+.0f}'} KiB per 10 min"
        )
    else:
        lines.append("RSS after warm-up: no samples (the run ended within the warm-up)")
    if rows:
        lines.append(
            f"threads {min(r[2] for r in rows)}..{max(r[2] for r in rows)}, "
            f"fds {min(r[3] for r in rows)}..{max(r[3] for r in rows)}"
        )
    lines.append(f"ping round trip: max {soak.ping_max_all * 1000:.1f} ms, failures {soak.ping_failures}")
    lines.append("counters: " + " ".join(f"{k} {v}" for k, v in snap.items()))
    lines.append(f"load average {'at the end' if final else 'now'}: {open('/proc/loadavg').read().split()[:3]}")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "summary.txt"), "w") as f:
        f.write(text)
    return text


def slope_per_10min(points):
    """Least-squares slope of (t, rss) in KiB per 600 s; None with fewer than 2 points."""
    if len(points) < 2:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mr = sum(r for _, r in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return None
    return sum((t - mt) * (r - mr) for t, r in points) / var * 600


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=3600, help="seconds of traffic (3600)")
    ap.add_argument("--interval", type=float, default=30, help="seconds between samples (30)")
    ap.add_argument("--warmup", type=float, default=300, help="seconds left out of the RSS figures (300)")
    ap.add_argument("--rate", type=float, default=350, help="publishes per second in total (350)")
    ap.add_argument("--churn", type=int, default=80, help="churning connection slots (80)")
    ap.add_argument("--ids", type=int, default=300, help="client ids the churn draws from (300)")
    ap.add_argument("--slow", type=int, default=3, help="slow readers (3)")
    ap.add_argument("--out", default="soak-out", help="directory for soak.csv, summary.txt, broker.log")
    ap.add_argument("--broker", help="a broker binary to run instead of building the example broker")
    ap.add_argument("--broker-arg", action="append", default=[], help="an extra broker argument (repeatable)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    os.makedirs(args.out, exist_ok=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    binary = args.broker
    if binary is None:
        subprocess.run(["cargo", "build", "--quiet", "--release", "--example", "broker"], cwd=ROOT, check=True)
        binary = BROKER
    broker, port = start_broker(binary, args.broker_arg, os.path.join(args.out, "broker.log"))
    counters = Counters()
    soak = Soak(port, args, counters)
    csv_path = os.path.join(args.out, "soak.csv")
    rows = []
    started = time.monotonic()
    crashed = None
    interrupted = False
    try:
        soak.start()
        with open(csv_path, "w") as csv:
            keys = list(counters.snapshot())
            csv.write("t_s,rss_kib,threads,fds,ping_ms,ping_max_ms," + ",".join(keys) + "\n")
            while True:
                left = started + args.duration - time.monotonic()
                if left <= 0 or soak.stop.wait(min(args.interval, left)):
                    break
                if broker.poll() is not None:
                    crashed = broker.returncode
                    break
                t = time.monotonic() - started
                st = proc_status(broker.pid)
                rss = int(st["VmRSS"].split()[0])
                threads = int(st["Threads"])
                fds = len(os.listdir(f"/proc/{broker.pid}/fd"))
                last, mx = soak.take_ping()
                snap = counters.snapshot()
                ms = lambda v: "" if v is None else f"{v * 1000:.2f}"
                csv.write(f"{t:.0f},{rss},{threads},{fds},{ms(last)},{ms(mx)}," + ",".join(str(snap[k]) for k in keys) + "\n")
                csv.flush()
                rows.append((t, rss, threads, fds))
                summary(args, rows, t, soak, counters, None, None, final=False)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        ran = time.monotonic() - started
        soak.finish()
        rc = stop_broker(broker)

    text = summary(args, rows, ran, soak, counters, crashed, rc, final=not interrupted)
    print(text, end="")
    return 1 if crashed is not None else 0


if __name__ == "__main__":
    sys.exit(main())
