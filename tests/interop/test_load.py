"""A small load test: many mosquitto_pub processes into the example broker at once."""

import collections
import pathlib
import shutil
import socket
import time

from conftest import HOST, QUIET, WAIT, count_messages, messages, mosquitto_sub, need, our_client

PUBLISHERS = 50
EACH = 100
TOTAL = PUBLISHERS * EACH
BOUND = 90.0  # seconds for the whole exchange, on a loaded 2-core machine


def test_fifty_publishers_of_a_hundred_qos1_messages_reach_every_subscriber(procs, bins, our_broker):
    broker = our_broker("aws-iot", "--max-queued", str(TOTAL))
    theirs = mosquitto_sub(procs, broker.port, "load/+", 1)
    ours = procs.start(our_client(bins, "sub", broker.port, "load/+", 1, "--count", TOTAL), name="our-sub")
    ours.wait_line(lambda l: l.startswith("subscribed"))
    need("mosquitto_pub", shutil.which("mosquitto_pub"))
    started = time.monotonic()
    pubs = [
        procs.start(
            ["mosquitto_pub", "-V", "mqttv311", "-h", "127.0.0.1", "-p", broker.port, "-q", "1",
             "-t", f"load/{i}", "-m", f"from-{i}", "--repeat", str(EACH)],
            name=f"mosquitto_pub-{i}",
        )
        for i in range(PUBLISHERS)
    ]
    for p in pubs:
        left = max(1.0, BOUND - (time.monotonic() - started))
        assert p.wait(left) == 0, p.describe()
    left = max(1.0, BOUND - (time.monotonic() - started))
    got = messages(theirs, TOTAL, timeout=left)
    assert ours.wait(max(1.0, BOUND - (time.monotonic() - started))) == 0, ours.describe()
    elapsed = time.monotonic() - started
    print(f"{TOTAL} QoS 1 messages to 2 subscribers in {elapsed:.2f}s")
    for counted in (collections.Counter(m[2] for m in got), collections.Counter(ours.out())):
        assert counted == {f"from-{i}": EACH for i in range(PUBLISHERS)}
    assert not any("dropped" in l for l in broker.proc.err())


def mqtt_string(s):
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def packet(first_byte, body):
    assert len(body) < 128
    return bytes([first_byte, len(body)]) + body


def rss_kib(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_subscriber_that_stops_reading_is_dropped_and_memory_stays_bounded(paho, our_broker):
    broker = our_broker("mqtt311", "--write-queue", "16")
    # A subscriber that sends CONNECT and SUBSCRIBE by hand and then never reads.
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.settimeout(WAIT)
    try:
        stalled.connect((HOST, broker.port))
        connect = mqtt_string("MQTT") + bytes([4, 0x02, 0, 60]) + mqtt_string("stalled")
        stalled.sendall(packet(0x10, connect))
        stalled.sendall(packet(0x82, bytes([0, 1]) + mqtt_string("flood") + bytes([0])))
        broker.proc.wait_line(lambda l: "client_id=stalled" in l)
        publisher = paho(broker.port, client_id="flooder")
        chunk = b"x" * 65536
        before = rss_kib(broker.proc.pid)
        for _ in range(400):  # 25 MiB at QoS 0, far more than the socket buffers hold
            assert publisher.publish("flood", chunk, 0)
        line = broker.proc.wait_line(lambda l: "write queue full" in l)
        after = rss_kib(broker.proc.pid)
        print(f"{line}; broker RSS {before} KiB before, {after} KiB after the flood")
        assert after - before < 32 * 1024
        # The broker goes on serving everybody else.
        sub = paho(broker.port)
        assert sub.subscribe("after/flood", 0) == [0]
        assert publisher.publish("after/flood", "small", 0)
        (m,) = sub.expect(1)
        assert m.payload == b"small"
    finally:
        stalled.close()


def test_concurrent_qos2_publishers_are_delivered_exactly_once(procs, our_broker):
    # MQTT-4.3.3-2 under concurrency: 10 mosquitto_pub × 50 QoS 2 messages, each
    # received once by a QoS 2 subscriber, none twice.
    broker = our_broker("mqtt311")
    sub = mosquitto_sub(procs, broker.port, "q2load/+", 2)
    pubs = [
        procs.start(
            ["mosquitto_pub", "-V", "mqttv311", "-h", "127.0.0.1", "-p", broker.port, "-q", "2",
             "-t", f"q2load/{i}", "-m", f"from-{i}", "--repeat", "50"],
            name=f"mosquitto_pub-{i}",
        )
        for i in range(10)
    ]
    for p in pubs:
        assert p.wait(BOUND) == 0, p.describe()
    got = messages(sub, 500, timeout=WAIT)
    time.sleep(QUIET)
    assert count_messages(sub) == 500, "duplicates arrived"
    assert collections.Counter(m[2] for m in got) == {f"from-{i}": 50 for i in range(10)}
    assert {m[0] for m in got} == {2}
