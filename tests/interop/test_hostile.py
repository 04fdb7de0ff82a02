"""Hostile and careless peers against the example broker: idle and slow-CONNECT
connections, connection floods, garbage bytes, subscribe storms, takeover storms, slow
subscribers, retained floods and oversized packets.

In every test a health client (its own connection, keep alive 0) sends PINGREQ after
PINGREQ while the abuse goes on; the broker must answer each within a generous bound
(the machine may be loaded: this is responsiveness, not a timing measurement), must
still be running at the end, and where a bound applies, its resident memory (VmRSS in
/proc/PID/status) must stay under a bound derived from its configured limits.

The abusive peers speak raw MQTT over sockets so that they can do what no client
library would.
"""

import random
import socket
import struct
import threading
import time

import pytest

from conftest import HOST, QUIET, WAIT, proc_fd_count, proc_rss_kib

# A PINGREQ left unanswered this long means the broker is not responsive.
PING_BOUND = 1.0
MIB = 1024


from rawmqtt import (  # noqa: E402
    connect_packet,
    mqtt_string,
    packet,
    publish_packet,
    read_packet,
    remaining_length,
    subscribe_packet,
)


def raw_client(port, client_id, clean=True):
    """A socket past a CONNACK that accepted the session."""
    sock = socket.create_connection((HOST, port), timeout=WAIT)
    sock.sendall(connect_packet(client_id, clean))
    first, body = read_packet(sock)
    assert first == 0x20 and body[1] == 0, f"CONNACK {first:#x} {body.hex()}"
    return sock


def closed_by_peer(sock, timeout=WAIT):
    """Whether the broker closes `sock` within `timeout` (reading and discarding
    whatever it sends first)."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except (socket.timeout, TimeoutError):
        return False
    return False


# ---- watching the broker --------------------------------------------------------------


class Health:
    """A client that pings the broker without pause in a thread and keeps the longest
    round trip; also samples the broker's RSS each round."""

    def __init__(self, server):
        self.pid = server.proc.pid
        self.sock = raw_client(server.port, "health")
        self.stop = threading.Event()
        self.max_rtt = 0.0
        self.pings = 0
        self.error = None
        self.max_rss = proc_rss_kib(self.pid)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while not self.stop.wait(0.05):
                t0 = time.monotonic()
                self.sock.sendall(b"\xc0\x00")
                first, _ = read_packet(self.sock)
                assert first == 0xD0, f"not a PINGRESP: {first:#x}"
                self.max_rtt = max(self.max_rtt, time.monotonic() - t0)
                self.pings += 1
                self.max_rss = max(self.max_rss, proc_rss_kib(self.pid))
        except Exception as e:  # noqa: BLE001 - reported by check()
            self.error = e

    def check(self, server):
        """Stops pinging; asserts every ping was answered within the bound and the
        broker still runs."""
        self.stop.set()
        self.thread.join(WAIT + PING_BOUND)
        assert self.error is None, f"health client: {self.error!r}\n{server.proc.describe()}"
        # One more, now: the abuse may have been shorter than the first pause.
        t0 = time.monotonic()
        self.sock.sendall(b"\xc0\x00")
        assert read_packet(self.sock)[0] == 0xD0
        self.max_rtt = max(self.max_rtt, time.monotonic() - t0)
        self.pings += 1
        self.sock.close()
        assert self.pings > 0, "no ping answered"
        assert self.max_rtt < PING_BOUND, f"a ping took {self.max_rtt:.3f}s"
        assert server.proc.running(), server.proc.describe()


@pytest.fixture
def broker(our_broker):
    """Our broker (mqtt311 unless told) with a health client: `broker(*flags)`."""
    started = []

    def start(*extra, profile="mqtt311"):
        server = our_broker(profile, *extra)
        server.health = Health(server)
        started.append(server)
        return server

    yield start
    for server in started:
        server.health.stop.set()


def still_routes(server, paho, topic="still/works"):
    """A fresh subscriber receives a fresh publisher's QoS 1 message."""
    sub = paho(server.port)
    assert sub.subscribe(topic, 1) == [1]
    pub = paho(server.port)
    assert pub.publish(topic, b"ok", 1)
    assert sub.expect(1)[0].payload == b"ok"


# ---- the tests ------------------------------------------------------------------------


def test_idle_and_slow_connect_connections_are_closed_at_the_connect_timeout(broker, paho):
    server = broker("--connect-timeout-ms", "1500")
    # A client connected before the abuse keeps working through it.
    sub = paho(server.port)
    assert sub.subscribe("idle/t", 0) == [0]
    idle = [socket.create_connection((HOST, server.port), timeout=WAIT) for _ in range(300)]
    whole = connect_packet("dribbler")
    closed_after = []

    def dribble():
        s = socket.create_connection((HOST, server.port), timeout=WAIT)
        t0 = time.monotonic()
        try:
            for b in whole:
                s.sendall(bytes([b]))
                time.sleep(1.0)
        except OSError:
            closed_after.append(time.monotonic() - t0)
        finally:
            s.close()

    dribblers = [threading.Thread(target=dribble, daemon=True) for _ in range(5)]
    for t in dribblers:
        t.start()
    pub = paho(server.port)
    assert pub.publish("idle/t", b"during", 0)
    assert sub.expect(1)[0].payload == b"during"
    # Every idle connection is closed once the timeout has passed (1.5 s, plus slack).
    for s in idle:
        assert closed_by_peer(s, timeout=WAIT), "an idle connection stayed open"
        s.close()
    for t in dribblers:
        t.join(WAIT + len(whole))
    # Closed long before the CONNECT could be completed (a byte a second).
    assert len(closed_after) == 5 and max(closed_after) < len(whole) - 3, closed_after
    server.health.check(server)
    still_routes(server, paho)


def test_a_connection_flood_leaks_nothing(broker, paho):
    server = broker()
    fds_before = proc_fd_count(server.proc.pid)
    for i in range(3000):
        s = socket.create_connection((HOST, server.port), timeout=WAIT)
        if i % 2:
            s.sendall(connect_packet(f"flood-{i % 50}"))
            first, _ = read_packet(s)
            assert first == 0x20
        s.close()
    server.health.check(server)
    # Every connection's descriptor is released.
    deadline = time.monotonic() + WAIT
    while proc_fd_count(server.proc.pid) > fds_before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc_fd_count(server.proc.pid) <= fds_before
    still_routes(server, paho)


GARBAGE = {
    "random bytes": bytes(random.Random(1).randrange(256) for _ in range(4096)),
    "reserved packet type 0": b"\x00\x00",
    "reserved packet type 15": b"\xf0\x00",
    "remaining length of five bytes": b"\x10\xff\xff\xff\xff\x7f",
    "a CONNECT with a bad protocol name": packet(0x10, mqtt_string("MQTX") + b"\x04\x02\x00\x00" + mqtt_string("g")),
    "a CONNECT with reserved flag 1": packet(0x10, mqtt_string("MQTT") + b"\x04\x03\x00\x00" + mqtt_string("g")),
}


BEFORE_CONNECT = {
    "a PUBLISH before CONNECT": publish_packet("t", b"x"),
    "a PINGREQ before CONNECT": b"\xc0\x00",
}

AFTER_CONNECT = {
    "a second CONNECT": connect_packet("again"),
    "a SUBSCRIBE with reserved flags 0": packet(0x80, struct.pack("!H", 1) + mqtt_string("a") + b"\x00"),
    "a SUBSCRIBE with QoS 3": subscribe_packet(1, [("a", 3)]),
    "a SUBSCRIBE without filters": packet(0x82, struct.pack("!H", 1)),
    "a topic with a NUL": publish_packet("a\x00b", b"x"),
    "a topic that is not UTF-8": publish_packet(b"a\xff\xfeb", b"x"),
    "a topic with a wildcard": publish_packet("a/+", b"x"),
    "a QoS 3 PUBLISH": packet(0x36, mqtt_string("a") + b"\x00\x01x"),
    "a PUBACK cut short": b"\x40\x01\x00",
}


@pytest.mark.parametrize("after_connect", [False, True], ids=["before-connect", "after-connect"])
def test_garbage_bytes_close_only_their_connection(broker, paho, after_connect):
    server = broker()
    sub = paho(server.port)
    assert sub.subscribe("bystander/#", 1) == [1]
    pub = paho(server.port)
    garbage = dict(GARBAGE, **(AFTER_CONNECT if after_connect else BEFORE_CONNECT))
    for n, (what, data) in enumerate(garbage.items()):
        if after_connect:
            s = raw_client(server.port, f"garbage-{n}")
        else:
            s = socket.create_connection((HOST, server.port), timeout=WAIT)
        try:
            s.sendall(data)
        except OSError:
            pass  # closed while sending: that is the expected outcome too
        assert closed_by_peer(s), f"{what}: the connection stayed open"
        s.close()
        assert pub.publish(f"bystander/{n}", what.encode(), 1), what
        assert sub.expect(1)[0].payload == what.encode()
    server.health.check(server)


def test_a_subscribe_storm_is_answered_without_stalling_others(broker, paho):
    server = broker()
    s = raw_client(server.port, "storm")
    storm, per = 2000, 20
    acks = []

    def read_acks():
        try:
            while len(acks) < storm:
                first, body = read_packet(s)
                if first == 0x90:
                    acks.append(body)
        except OSError:
            pass

    reader = threading.Thread(target=read_acks, daemon=True)
    reader.start()
    batch = bytearray()
    for i in range(storm):
        filters = [(f"storm/{i}/{j}/+" if j % 2 else f"storm/{i}/#", 1) for j in range(per)]
        batch += subscribe_packet(i + 1, filters)
        if len(batch) > 64 * 1024:
            s.sendall(batch)
            batch.clear()
    s.sendall(batch)
    reader.join(WAIT * 6)
    assert len(acks) == storm, f"{len(acks)} of {storm} SUBACKs\n{server.proc.describe()[-3000:]}"
    assert all(body[2:] == b"\x01" * per for body in acks)
    server.health.check(server)
    # The subscriptions are in place: a publish on one of them arrives.
    pub = paho(server.port)
    assert pub.publish("storm/1234/x", b"hit", 0)
    s.settimeout(WAIT)
    first, body = read_packet(s)
    assert first & 0xF0 == 0x30 and body.endswith(b"hit")
    s.close()
    still_routes(server, paho)


def test_a_takeover_storm_leaves_one_working_session(broker, paho):
    server = broker()
    fds_before = proc_fd_count(server.proc.pid)
    outcomes = {"connack": 0, "closed": 0}
    lock = threading.Lock()

    def take_over(seed):
        rng = random.Random(seed)
        for _ in range(20):
            try:
                s = socket.create_connection((HOST, server.port), timeout=WAIT)
                s.sendall(connect_packet("contested", clean=rng.random() < 0.5))
                first, _ = read_packet(s)
                key = "connack" if first == 0x20 else "other"
                if rng.random() < 0.5:
                    s.sendall(subscribe_packet(1, [("contested/#", 1)]))
                time.sleep(rng.uniform(0, 0.02))
                s.close()
            except OSError:
                key = "closed"  # taken over before or right after its CONNACK
            with lock:
                outcomes[key] = outcomes.get(key, 0) + 1

    threads = [threading.Thread(target=take_over, args=(i,), daemon=True) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 6)
    assert not any(t.is_alive() for t in threads)
    assert outcomes.get("other", 0) == 0, outcomes
    assert outcomes["connack"] > 0, outcomes
    server.health.check(server)
    # The last of them is a working session, and nothing is left behind.
    owner = paho(server.port, client_id="contested", clean_session=True)
    assert owner.subscribe("contested/x", 1) == [1]
    pub = paho(server.port)
    assert pub.publish("contested/x", b"mine", 1)
    assert owner.expect(1)[0].payload == b"mine"
    owner.disconnect()
    deadline = time.monotonic() + WAIT
    while proc_fd_count(server.proc.pid) > fds_before + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc_fd_count(server.proc.pid) <= fds_before + 2  # + the two paho clients


def test_a_slow_subscriber_costs_bounded_memory_and_stalls_no_one(broker):
    max_queued, write_queue, inflight, size, batch = 200, 256, 20, 2048, 100
    server = broker(
        "--max-queued", str(max_queued), "--write-queue", str(write_queue), "--max-inflight", str(inflight)
    )
    rss_before = proc_rss_kib(server.proc.pid)
    # The slow one: a persistent session subscribed at QoS 1 that never reads again.
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.settimeout(WAIT)
    slow.connect((HOST, server.port))
    slow.sendall(connect_packet("slow", clean=False))
    assert read_packet(slow)[0] == 0x20
    slow.sendall(subscribe_packet(1, [("flow/#", 1)]))
    assert read_packet(slow)[0] == 0x90
    # The healthy one reads everything and acknowledges QoS 1.
    fast = raw_client(server.port, "fast")
    fast.sendall(subscribe_packet(1, [("flow/#", 1)]))
    assert read_packet(fast)[0] == 0x90
    received = {0: 0, 1: 0}
    cond = threading.Condition()

    def read_fast():
        try:
            while True:
                first, body = read_packet(fast)
                if first & 0xF0 != 0x30:
                    continue
                qos = (first >> 1) & 3
                if qos:
                    tlen = struct.unpack("!H", body[:2])[0]
                    fast.sendall(b"\x40\x02" + body[2 + tlen : 4 + tlen])
                with cond:
                    received[qos] += 1
                    cond.notify_all()
        except OSError:
            pass

    threading.Thread(target=read_fast, daemon=True).start()
    pub = raw_client(server.port, "flow-pub")
    pubacks = []
    threading.Thread(
        target=lambda: [pubacks.append(read_packet(pub)[0]) for _ in range(5000)], daemon=True
    ).start()
    payload = b"x" * size

    def send(qos, total):
        # In batches, each once the healthy subscriber has caught up with the last:
        # the publisher is fast, never faster than a reader that reads.
        # A batch fits in its queue bounds: a burst beyond them is dropped by design.
        for start in range(0, total, batch):
            pub.sendall(b"".join(publish_packet(f"flow/{qos}", payload, qos, pid=start + i + 1) for i in range(batch)))
            with cond:
                assert cond.wait_for(lambda: received[qos] >= start + batch, timeout=WAIT), (
                    f"QoS {qos}: the healthy subscriber has {received[qos]} of {start + batch}"
                )

    send(0, 20000)
    send(1, 5000)
    deadline = time.monotonic() + WAIT
    while len(pubacks) < 5000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(pubacks) == 5000 and set(pubacks) == {0x40}
    server.health.check(server)
    # 50 MB went to the slow subscriber; the broker may hold its queue, its window and
    # its write queue, (200 + 20 + 256) x 2 KiB = 1 MB, as much for the healthy one:
    # four times that, for the allocator, is 8 MB; allow 16 MB.
    bound = rss_before + 16 * MIB
    assert server.health.max_rss < bound, f"RSS {server.health.max_rss} KiB, bound {bound} KiB"
    # The slow session kept what its bounds allow, no more: resumed, it receives its
    # window and its queue of QoS 1 messages, and then nothing.
    slow.close()
    again = socket.create_connection((HOST, server.port), timeout=WAIT)
    again.sendall(connect_packet("slow", clean=False))
    first, body = read_packet(again)
    assert first == 0x20 and body == b"\x01\x00", f"CONNACK {body.hex()}"
    resumed = 0
    again.settimeout(QUIET)
    try:
        while True:
            first, body = read_packet(again)
            if first & 0xF0 == 0x30 and (first >> 1) & 3 == 1:
                tlen = struct.unpack("!H", body[:2])[0]
                again.sendall(b"\x40\x02" + body[2 + tlen : 4 + tlen])
                resumed += 1
    except (socket.timeout, TimeoutError):
        pass
    assert 0 < resumed <= max_queued + inflight, f"{resumed} QoS 1 messages for the resumed slow session"
    again.close()
    fast.close()
    pub.close()


def flood_retained(server, n, size=8):
    """Offers `n` distinct retained messages of `size` bytes (QoS 0, pipelined), then
    waits for a ping round trip so that all are handled before anyone subscribes."""
    pub = raw_client(server.port, "retainer")
    batch = bytearray()
    for i in range(n):
        batch += publish_packet(f"ret/{i // 100}/{i}", (b"r%d " % i).ljust(size, b"."), 0, retain=True)
        if len(batch) > 64 * 1024:
            pub.sendall(batch)
            batch.clear()
    pub.sendall(batch)
    pub.sendall(b"\xc0\x00")
    assert read_packet(pub)[0] == 0xD0
    pub.close()


def retained_for_hash(server, n):
    """Subscribes `#` and reads `n` retained messages; fails if the broker closes the
    connection first."""
    s = raw_client(server.port, "everything")
    s.sendall(subscribe_packet(1, [("#", 0)]))
    got, suback = 0, False
    s.settimeout(WAIT)
    try:
        while got < n or not suback:
            first, _ = read_packet(s)
            if first == 0x90:
                suback = True
            elif first & 0xF0 == 0x30:
                assert first & 1, "not flagged retained"
                got += 1
    except OSError as e:
        pytest.fail(f"{got} of {n} retained messages, SUBACK {suback}: {e!r}\n{server.proc.describe()[-2000:]}")
    return s


def test_a_retained_flood_is_held_to_max_retained(broker, paho):
    stored = 1000
    server = broker("--max-retained", str(stored))
    rss_before = proc_rss_kib(server.proc.pid)
    flood_retained(server, 50000, size=1024)
    s = retained_for_hash(server, stored)
    # Only what the bound let in: nothing more follows.
    s.settimeout(QUIET)
    with pytest.raises((socket.timeout, TimeoutError)):
        read_packet(s)
    s.close()
    server.health.check(server)
    # 50 MB were offered; 1 000 messages of 1 KiB are held: allow 16 MB.
    bound = rss_before + 16 * MIB
    assert server.health.max_rss < bound, f"RSS {server.health.max_rss} KiB, bound {bound} KiB"
    still_routes(server, paho)


def test_a_retained_flood_then_a_hash_subscriber_gets_them_all(broker, paho):
    n = 20000
    server = broker()
    flood_retained(server, n)
    retained_for_hash(server, n).close()
    server.health.check(server)
    still_routes(server, paho)


def test_oversized_packets_are_refused_before_and_after_connect(broker, paho):
    server = broker("--max-connect-size", "4096", "--max-packet-size", "65536")
    rss_before = proc_rss_kib(server.proc.pid)
    sub = paho(server.port)
    assert sub.subscribe("big/#", 1) == [1]
    # Before CONNECT: headers announcing 250 MB, and a CONNECT one byte over the limit.
    announce = [socket.create_connection((HOST, server.port), timeout=WAIT) for _ in range(20)]
    for s in announce:
        s.sendall(b"\x10" + remaining_length(250 * 1024 * 1024) + b"\x00" * 1000)
    for s in announce:
        assert closed_by_peer(s), "a 250 MB CONNECT header was not refused"
        s.close()
    over = socket.create_connection((HOST, server.port), timeout=WAIT)
    body = mqtt_string("MQTT") + b"\x04\x02\x00\x00" + mqtt_string("c" * (4097 - 12))
    over.sendall(b"\x10" + remaining_length(len(body)) + body[:100])
    assert closed_by_peer(over), "a CONNECT over --max-connect-size was not refused"
    over.close()
    # After CONNECT: a PUBLISH announcing 200 MB, and a whole one over the payload limit.
    for what, data in (
        ("announced", b"\x30" + remaining_length(200 * 1024 * 1024) + mqtt_string("big/a") + b"x" * 1000),
        ("whole", publish_packet("big/b", b"y" * (65536 + 1), 1, pid=7)),
    ):
        s = raw_client(server.port, f"big-{what}")
        try:
            s.sendall(data)
        except OSError:
            pass
        assert closed_by_peer(s), f"an oversized PUBLISH ({what}) was not refused"
        s.close()
    sub.nothing(QUIET)
    # One at the limit still goes through.
    pub = paho(server.port)
    assert pub.publish("big/c", b"z" * (65536 - 100), 1)
    assert len(sub.expect(1)[0].payload) == 65536 - 100
    server.health.check(server)
    # 5 GB were announced; a bounded broker buffers at most 4 KiB before a CONNECT and
    # 64 KiB after, per connection: allow 16 MB.
    bound = rss_before + 16 * MIB
    assert server.health.max_rss < bound, f"RSS {server.health.max_rss} KiB, bound {bound} KiB"
