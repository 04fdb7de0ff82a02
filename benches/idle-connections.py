#!/usr/bin/env python3
"""Memory per idle connection: the example broker against mosquitto, in the same run.

For each broker (ours in release, then Debian's mosquitto), on a free 127.0.0.1 port:
start it, read its resident set size (VmRSS in /proc/PID/status), open N connections
(default 5 000; N=... to change) that each send a CONNECT (clean session, keep alive 0,
so they never need to ping) and one SUBSCRIBE, wait for every CONNACK and SUBACK, let
the broker settle for a second, read its RSS again, close everything and stop the
broker by its PID. Prints one line per broker and round:
    BROKER connections N rss_before_kib A rss_after_kib B bytes_per_connection C
ROUNDS=... (default 1) repeats the pair. Raises the open-file limit (soft up to hard)
for itself and the brokers it starts. Needs `cargo build --release --example broker`
first (done here) and mosquitto (MOSQUITTO=path, default /usr/sbin/mosquitto).
BEFORE=path adds another build of the example broker (an older commit, say) to each
round, printed as `mqtt-sansio-before`.
"""

import os
import resource
import socket
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = int(os.environ.get("N", "5000"))
ROUNDS = int(os.environ.get("ROUNDS", "1"))
MOSQUITTO = os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto")
OURS = os.path.join(ROOT, "target", "release", "examples", "broker")
BEFORE = os.environ.get("BEFORE")


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = N * 2 + 1000
    if hard != resource.RLIM_INFINITY and hard < want:
        sys.exit(f"the open-file hard limit {hard} is below the {want} needed")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def mqtt_string(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def packet(first, body):
    n = len(body)
    length = bytearray()
    while True:
        b = n % 128
        n //= 128
        length.append(b | (0x80 if n else 0))
        if not n:
            break
    return bytes([first]) + bytes(length) + body


def connect_and_subscribe(port, i):
    s = socket.create_connection(("127.0.0.1", port))
    connect = packet(0x10, mqtt_string("MQTT") + bytes([4, 0x02, 0, 0]) + mqtt_string(f"idle-{i}"))
    subscribe = packet(0x82, struct.pack("!H", 1) + mqtt_string(f"idle/{i}/#") + bytes([1]))
    s.sendall(connect + subscribe)
    got = b""
    while len(got) < 9:  # CONNACK (4) + SUBACK (5)
        chunk = s.recv(64)
        if not chunk:
            raise RuntimeError(f"connection {i} closed by the broker after {got!r}")
        got += chunk
    if got[:4] != b"\x20\x02\x00\x00" or got[4] != 0x90 or got[8] != 1:
        raise RuntimeError(f"connection {i}: unexpected answer {got!r}")
    return s


def wait_listening(port):
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def measure(name, argv, port):
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conns = []
    try:
        wait_listening(port)
        time.sleep(0.5)
        before = rss_kib(proc.pid)
        for i in range(N):
            conns.append(connect_and_subscribe(port, i))
        time.sleep(1.0)
        after = rss_kib(proc.pid)
        per = (after - before) * 1024 / N
        print(f"{name} connections {N} rss_before_kib {before} rss_after_kib {after} "
              f"bytes_per_connection {per:.0f}", flush=True)
    finally:
        for s in conns:
            s.close()
        proc.kill()
        proc.wait()


def main():
    raise_fd_limit()
    subprocess.run(["cargo", "build", "-q", "--release", "-p", "mqtt-sansio-tokio",
                    "--example", "broker"], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        for _ in range(ROUNDS):
            port = free_port()
            measure("mqtt-sansio", [OURS, "--listen", f"127.0.0.1:{port}", "--profile", "mqtt311"],
                    port)
            if BEFORE:
                port = free_port()
                measure("mqtt-sansio-before",
                        [BEFORE, "--listen", f"127.0.0.1:{port}", "--profile", "mqtt311"], port)
            port = free_port()
            conf = os.path.join(tmp, "mosquitto.conf")
            with open(conf, "w") as f:
                f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
            os.chmod(conf, 0o644)
            measure("mosquitto", [MOSQUITTO, "-c", conf], port)


if __name__ == "__main__":
    main()
