"""Fixtures and helpers for the interop tests: the crate's TCP broker and client
examples against MQTT implementations written elsewhere (mosquitto, paho-mqtt).

Every server listens on 127.0.0.1 on a free port. Every process a test starts is
registered with the `procs` fixture, which stops it by PID when the test ends, also on
failure. Every wait has a timeout. With MQTT_INTEROP=1 a missing peer fails the test
instead of skipping it.
"""

import json
import os
import pathlib
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
REQUIRED = os.environ.get("MQTT_INTEROP") == "1"
HOST = "127.0.0.1"
# Waits for something that should happen (a message, an ack): generous.
WAIT = 10.0
# Waits for something that should not happen (a message that must not arrive): short.
QUIET = 1.0


def need(what, available):
    """Skips the test when a peer is missing, or fails it under MQTT_INTEROP=1."""
    if available:
        return
    if REQUIRED:
        pytest.fail(f"{what} is not available (MQTT_INTEROP=1 requires every peer)")
    pytest.skip(f"{what} is not available")


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {HOST}:{port} after {timeout}s")


def proc_rss_kib(pid):
    """A process's resident set size in KiB (VmRSS in /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def proc_fd_count(pid):
    """How many file descriptors a process holds open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


class Proc:
    """A child process; threads collect its stdout and stderr lines."""

    def __init__(self, argv, name=None):
        self.argv = [str(a) for a in argv]
        self.name = name or pathlib.Path(self.argv[0]).name
        self.popen = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.pid = self.popen.pid
        self.lines = {"out": [], "err": []}
        self.cond = threading.Condition()
        self.threads = [
            threading.Thread(target=self._collect, args=(self.popen.stdout, "out"), daemon=True),
            threading.Thread(target=self._collect, args=(self.popen.stderr, "err"), daemon=True),
        ]
        for t in self.threads:
            t.start()

    def _collect(self, pipe, key):
        for raw in iter(pipe.readline, b""):
            with self.cond:
                self.lines[key].append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def out(self):
        with self.cond:
            return list(self.lines["out"])

    def err(self):
        with self.cond:
            return list(self.lines["err"])

    def describe(self):
        return (
            f"{self.name} (pid {self.pid}, rc {self.popen.poll()}): {' '.join(self.argv)}\n"
            f"--- stdout\n" + "\n".join(self.out()) + "\n--- stderr\n" + "\n".join(self.err())
        )

    def wait_line(self, pred, stream="err", timeout=WAIT):
        """The first line of `stream` that satisfies `pred`, waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines[stream]:
                    if pred(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching line in {stream} after {timeout}s\n{self.describe()}")
                self.cond.wait(min(left, 0.2))

    def wait_lines(self, n, stream="out", pred=lambda _: True, timeout=WAIT):
        """The first `n` lines of `stream` that satisfy `pred`, waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = [l for l in self.lines[stream] if pred(l)]
                if len(got) >= n:
                    return got[:n]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{len(got)} of {n} lines in {stream} after {timeout}s\n{self.describe()}"
                    )
                self.cond.wait(min(left, 0.2))

    def wait(self, timeout=WAIT):
        """The exit status, waiting up to `timeout`; fails (and kills) on timeout."""
        try:
            rc = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise AssertionError(f"still running after {timeout}s\n{self.describe()}")
        for t in self.threads:
            t.join(timeout=2)
        return rc

    def running(self):
        return self.popen.poll() is None

    def send(self, sig):
        if self.running():
            self.popen.send_signal(sig)

    def kill9(self):
        if self.running():
            self.popen.kill()
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def stop(self, sig=signal.SIGTERM, timeout=5):
        """Stops the process by PID: `sig`, then SIGKILL after `timeout`."""
        if self.running():
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        for t in self.threads:
            t.join(timeout=2)
        for pipe in (self.popen.stdout, self.popen.stderr):
            pipe.close()
        return self.popen.returncode


class Procs:
    """The processes one test started."""

    def __init__(self):
        self.all = []

    def start(self, argv, name=None):
        p = Proc(argv, name)
        self.all.append(p)
        return p

    def run(self, argv, timeout=WAIT, check=True):
        """Runs a process to completion; fails when it does not exit 0 in time."""
        p = self.start(argv)
        rc = p.wait(timeout)
        if check:
            assert rc == 0, p.describe()
        return p

    def stop_all(self):
        for p in reversed(self.all):
            p.stop()


@pytest.fixture
def procs():
    ps = Procs()
    try:
        yield ps
    finally:
        ps.stop_all()


@pytest.fixture(scope="session")
def bins():
    """The example binaries, built once (debug: `cargo test` has built most of it)."""
    need("cargo", shutil.which("cargo"))
    build = subprocess.run(
        ["cargo", "build", "--quiet", "--workspace", "--examples"],
        cwd=ROOT,
        timeout=900,
    )
    assert build.returncode == 0, "cargo build --examples failed"
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=True,
    )
    examples = pathlib.Path(json.loads(meta.stdout)["target_directory"]) / "debug" / "examples"
    found = {name: examples / name for name in ("broker", "client")}
    for name, path in found.items():
        assert path.exists(), f"{path} was not built"
    return found


class Server:
    def __init__(self, proc, port):
        self.proc = proc
        self.port = port


@pytest.fixture
def our_broker(bins, procs):
    """Starts the example broker: `our_broker("mqtt311", "--max-queued", "100")`."""

    def start(profile="mqtt311", *extra):
        p = procs.start(
            [bins["broker"], "--listen", f"{HOST}:0", "--profile", profile, *extra], name="broker"
        )
        line = p.wait_line(lambda l: l.startswith("listening on "), stream="out")
        port = int(line.rsplit(":", 1)[1])
        return Server(p, port)

    return start


def mosquitto_with(procs, tmp_path, extra="", port=None):
    """Starts a mosquitto broker of its own on a free port (never the system one on
    1883), or on `port`, with the lines `extra` added to its configuration (by
    default: no persistence)."""
    need("mosquitto", shutil.which("mosquitto"))
    port = port or free_port()
    conf = tmp_path / "mosquitto.conf"
    if "persistence " not in extra:
        extra = "persistence false\n" + extra
    conf.write_text(
        f"listener {port} {HOST}\nallow_anonymous true\nlog_dest stderr\n"
        "log_type error\nlog_type warning\nlog_type notice\n" + extra
    )
    p = procs.start(["mosquitto", "-c", conf], name="mosquitto")
    wait_for_port(port)
    return Server(p, port)


@pytest.fixture
def mosquitto(procs, tmp_path):
    """A mosquitto broker of its own on a free port (never the system one on 1883)."""
    return mosquitto_with(procs, tmp_path)


def our_client(bins, mode, port, topic, qos, *extra):
    return [bins["client"], mode, "--host", HOST, "--port", port, "--topic", topic, "--qos", qos, *extra]


def mosquitto_pub(procs, port, topic, qos, *extra, timeout=WAIT):
    need("mosquitto_pub", shutil.which("mosquitto_pub"))
    return procs.run(
        ["mosquitto_pub", "-V", "mqttv311", "-h", HOST, "-p", port, "-t", topic, "-q", qos, *extra],
        timeout=timeout,
    )


MSG = "MSG "


def mosquitto_sub(procs, port, topic, qos, *extra):
    """A mosquitto_sub that prints `MSG <qos> <retain> <payload>` per message; returns
    once the SUBACK has arrived."""
    need("mosquitto_sub", shutil.which("mosquitto_sub"))
    # stdbuf: mosquitto_sub's stdout is block-buffered when it is a pipe.
    p = procs.start(
        [
            "stdbuf", "-oL", "mosquitto_sub", "-V", "mqttv311", "-h", HOST, "-p", port, "-t", topic, "-q", qos,
            "-d", "-F", MSG + "%q %r %p", *extra,
        ],
        name="mosquitto_sub",
    )
    p.wait_line(lambda l: l.startswith("Subscribed (mid"), stream="out")
    return p


def messages(p, n, timeout=WAIT):
    """The first `n` messages a `mosquitto_sub` printed, as (qos, retain, payload)."""
    lines = p.wait_lines(n, stream="out", pred=lambda l: l.startswith(MSG), timeout=timeout)
    out = []
    for l in lines:
        q, r, payload = l[len(MSG):].split(" ", 2)
        out.append((int(q), int(r), payload))
    return out


def payloads_covering(p, expected, timeout=WAIT):
    """The payloads a `mosquitto_sub` printed, once they include all of `expected`
    (duplicates kept), then after a quiet spell for late duplicates."""
    want = set(expected)
    deadline = time.monotonic() + timeout
    while True:
        got = [l[len(MSG):].split(" ", 2)[2] for l in p.out() if l.startswith(MSG)]
        if want <= set(got):
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"missing {sorted(want - set(got))}\n{p.describe()}")
        time.sleep(0.05)
    time.sleep(QUIET)
    return [l[len(MSG):].split(" ", 2)[2] for l in p.out() if l.startswith(MSG)]


def count_messages(p):
    return sum(1 for l in p.out() if l.startswith(MSG))


def import_paho():
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        mqtt = None
    need("paho-mqtt", mqtt is not None)
    return mqtt


class Paho:
    """A paho-mqtt client driven synchronously: every call waits with a timeout.

    A disconnect is final: the network loop stops instead of reconnecting, so a closed
    connection stays closed and can be asserted.
    """

    def __init__(
        self,
        port,
        client_id="",
        clean_session=True,
        will=None,
        keepalive=30,
        manual_ack=False,
        login=None,
    ):
        mqtt = import_paho()
        self.mqtt = mqtt
        self.c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=mqtt.MQTTv311,
            reconnect_on_failure=False,
            manual_ack=manual_ack,
        )
        self.messages = queue.Queue()
        self.connacks = queue.Queue()
        self.subacks = {}
        self.sub_lock = threading.Lock()
        self.closed = threading.Event()
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_subscribe = self._on_subscribe
        self.c.on_disconnect = self._on_disconnect
        if will:
            self.c.will_set(*will)
        if login:
            self.c.username_pw_set(*login)
        self.c.connect(HOST, port, keepalive=keepalive)
        self.c.loop_start()
        try:
            flags, rc = self.connacks.get(timeout=WAIT)
        except queue.Empty:
            self.close()
            raise AssertionError("no CONNACK")
        self.session_present = flags.session_present
        self.rc = rc

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connacks.put((flags, reason_code))

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        with self.sub_lock:
            self.subacks.setdefault(mid, queue.Queue()).put(reason_codes)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.closed.set()
        # Inside the network thread this only asks the loop to end: no reconnect.
        client.loop_stop()

    def subscribe(self, topic, qos=0, timeout=WAIT):
        """The granted codes (ints: 0-2, 128 for failure), or None without a SUBACK.
        `topic` may be a list of (filter, qos) pairs, sent in one SUBSCRIBE."""
        rc, mid = self.c.subscribe(topic, qos)
        assert rc == self.mqtt.MQTT_ERR_SUCCESS, rc
        with self.sub_lock:
            q = self.subacks.setdefault(mid, queue.Queue())
        try:
            codes = q.get(timeout=timeout)
        except queue.Empty:
            return None
        return [c.value for c in codes]

    def publish(self, topic, payload, qos, retain=False, timeout=WAIT):
        """Whether the publish was acknowledged (written, at QoS 0) within `timeout`."""
        info = self.c.publish(topic, payload, qos, retain)
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    def get(self, timeout=WAIT):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            return None

    def expect(self, n, timeout=WAIT):
        """Exactly the next `n` messages; fails if fewer arrive in time."""
        deadline = time.monotonic() + timeout
        got = []
        while len(got) < n:
            m = self.get(max(0.0, deadline - time.monotonic()))
            assert m is not None, f"{len(got)} of {n} messages: {[x.payload for x in got]}"
            got.append(m)
        return got

    def nothing(self, timeout=QUIET):
        m = self.get(timeout)
        assert m is None, f"unexpected message on {m.topic}: {m.payload!r}"

    def disconnect(self):
        """A clean DISCONNECT."""
        self.c.disconnect()
        self.closed.wait(WAIT)
        self.c.loop_stop()

    def drop(self):
        """Closes the socket without DISCONNECT (an abrupt end, as a crash would)."""
        self.c.loop_stop()
        sock = self.c.socket()
        if sock is not None:
            sock.close()

    def close(self):
        """Teardown: whatever state it is in, stop the thread and the socket."""
        try:
            self.c.loop_stop()
        finally:
            sock = self.c.socket()
            if sock is not None:
                sock.close()


@pytest.fixture
def paho():
    """Opens paho clients and closes them when the test ends: `paho(port, ...)`."""
    clients = []

    def open_client(port, **kw):
        c = Paho(port, **kw)
        clients.append(c)
        return c

    try:
        yield open_client
    finally:
        for c in clients:
            c.close()
