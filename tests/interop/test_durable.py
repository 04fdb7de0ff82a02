"""The durable broker (`--data-dir`): `kill -9` at a random moment while paho-mqtt
publishers send QoS 1 and QoS 2 to an online and an offline persistent subscriber, then
a restart on the same directory. Every message a publisher saw acknowledged reaches both
subscribers (QoS 1 at least once, QoS 2 exactly once), the sessions come back (session
present), their subscriptions and the retained message survive. And damaged stores are
refused at start, naming the file."""

import random
import threading
import time

import pytest

from conftest import HOST, QUIET, WAIT, Paho, import_paho

SEEDS = range(1, 21)
TOPIC = "durable/data"


def start(procs, bins, data_dir, *extra):
    p = procs.start(
        [bins["broker"], "--listen", f"{HOST}:0", "--profile", "mqtt311", "--data-dir", data_dir,
         "--max-inflight", "20", "--max-queued", "100000", *extra],
        name="broker",
    )
    line = p.wait_line(lambda l: l.startswith("listening on "), stream="out")
    return p, int(line.rsplit(":", 1)[1])


class Publisher(threading.Thread):
    """Publishes numbered messages at one QoS until told to stop or the broker goes;
    remembers which ones were acknowledged (PUBACK; PUBCOMP for QoS 2)."""

    def __init__(self, port, qos, name):
        super().__init__(daemon=True)
        mqtt = import_paho()
        self.qos = qos
        self.name_ = name
        # Never held while calling paho: its network thread calls `_on_publish` holding
        # paho's own locks.
        self.lock = threading.Lock()
        self.acked_mids = set()
        self.sent = {}
        self.halt = threading.Event()
        self.c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=name, clean_session=True,
            protocol=mqtt.MQTTv311, reconnect_on_failure=False,
        )
        self.c.max_inflight_messages_set(20)
        self.c.on_publish = self._on_publish
        self.c.connect(HOST, port)
        self.c.loop_start()

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self.lock:
            self.acked_mids.add(mid)

    def run(self):
        n = 0
        while not self.halt.is_set():
            payload = f"{self.name_}-{n}"
            info = self.c.publish(TOPIC, payload, self.qos)
            if info.rc != 0:
                break
            with self.lock:
                self.sent[info.mid] = payload
            n += 1
            # A bounded backlog: paho queues beyond its inflight window.
            while not self.halt.is_set():
                with self.lock:
                    backlog = len(self.sent) - len(self.acked_mids)
                if backlog <= 40:
                    break
                time.sleep(0.002)
        self.c.loop_stop()

    def finish(self):
        self.halt.set()
        self.join(5)
        s = self.c.socket()
        if s is not None:
            s.close()
        with self.lock:
            return {self.sent[m] for m in self.acked_mids if m in self.sent}


def reconnect(sub, port):
    """Reconnects a paho client whose broker went away, keeping its session state;
    returns the CONNACK's session present flag."""
    sub.c.loop_stop()
    sub.closed.clear()
    sub.c.connect(HOST, port, keepalive=30)
    sub.c.loop_start()
    flags, rc = sub.connacks.get(timeout=WAIT)
    assert rc == 0, rc
    return flags.session_present


def drain(sub, quiet=QUIET * 2):
    """Every message until `quiet` seconds pass without one."""
    got = []
    while True:
        m = sub.get(quiet)
        if m is None:
            return got
        got.append(m)


@pytest.mark.parametrize("seed", SEEDS)
def test_kill9_loses_no_acknowledged_message(procs, bins, paho, tmp_path, seed):
    rng = random.Random(seed)
    data = tmp_path / "data"
    broker, port = start(procs, bins, data)

    # The offline subscriber: subscribes, then leaves; its session stays.
    offline = paho(port, client_id="offline", clean_session=False)
    assert offline.subscribe(TOPIC, 2) == [2]
    assert offline.subscribe("durable/kept", 1) == [1]
    offline.disconnect()
    online = paho(port, client_id="online", clean_session=False)
    assert online.subscribe(TOPIC, 2) == [2]
    setter = paho(port, client_id="setter")
    assert setter.publish("durable/retained", f"kept-{seed}", 1, retain=True)
    setter.disconnect()

    pubs = [Publisher(port, 1, f"q1-{seed}"), Publisher(port, 2, f"q2-{seed}")]
    for p in pubs:
        p.start()
    time.sleep(rng.uniform(0.3, 2.0))
    broker.kill9()
    acked = {p.qos: p.finish() for p in pubs}
    assert acked[1] and acked[2], f"nothing acknowledged before the kill: {acked}"

    broker, port = start(procs, bins, data)
    # The online subscriber reconnects as the same client, as a device that stays up
    # does: once it sent PUBREC for a QoS 2 message, the message is its own to keep
    # (paho hands it over at PUBREL, which the broker resends).
    assert reconnect(online, port)
    offline = paho(port, client_id="offline", clean_session=False)
    assert offline.session_present
    got = {"online": drain(online), "offline": drain(offline)}

    for who, msgs in got.items():
        payloads = [m.payload.decode() for m in msgs if m.topic == TOPIC]
        missing = (acked[1] | acked[2]) - set(payloads)
        assert not missing, f"{who} lost {len(missing)} acknowledged: {sorted(missing)[:5]}"
        q2 = [p for p in payloads if p.startswith("q2-")]
        twice = {p for p in q2 if q2.count(p) > 1}
        assert not twice, f"{who} got QoS 2 messages twice: {sorted(twice)[:5]}"

    # The subscriptions survived: a new message reaches both without a new SUBSCRIBE.
    probe = paho(port, client_id="probe")
    assert probe.publish("durable/kept", "after", 1)
    assert [m.payload for m in offline.expect(1)] == [b"after"]
    assert probe.publish(TOPIC, "after-2", 2)
    assert [m.payload for m in online.expect(1)] == [b"after-2"]
    # The retained message survived.
    assert probe.subscribe("durable/retained", 1) == [1]
    m = probe.get(WAIT)
    assert m is not None and m.payload == f"kept-{seed}".encode() and m.retain
    total = sum(len(a) for a in acked.values())
    print(f"seed {seed}: {total} acknowledged before kill -9, all delivered")


def stopped_with_state(procs, bins, paho, data):
    broker, port = start(procs, bins, data)
    c = paho(port, client_id="keeper", clean_session=False)
    assert c.subscribe("kept/#", 1) == [1]
    assert c.publish("kept/r", "retained", 1, retain=True)
    c.disconnect()
    assert broker.stop() == 0, broker.describe()


@pytest.mark.parametrize("damage", ["header", "truncated", "middle"])
def test_a_damaged_store_is_refused_at_start_naming_the_file(procs, bins, paho, tmp_path, damage):
    data = tmp_path / "data"
    stopped_with_state(procs, bins, paho, data)
    db = data / "store.sqlite"
    raw = bytearray(db.read_bytes())
    if damage == "header":
        raw[0:16] = b"\xa5" * 16
    elif damage == "truncated":
        raw = raw[: len(raw) // 2 + 100]
    else:
        # Every byte of every page after the first two overwritten.
        rng = random.Random(7)
        for i in range(8192, len(raw)):
            raw[i] = rng.randrange(256)
    db.write_bytes(bytes(raw))
    p = procs.start(
        [bins["broker"], "--listen", f"{HOST}:0", "--profile", "mqtt311", "--data-dir", data],
        name="broker",
    )
    rc = p.wait(WAIT)
    assert rc == 1, p.describe()
    err = "\n".join(p.err())
    assert str(db) in err, err
    assert "panicked" not in err, err


def test_a_removed_database_is_refused_rather_than_started_empty(procs, bins, paho, tmp_path):
    data = tmp_path / "data"
    stopped_with_state(procs, bins, paho, data)
    (data / "store.sqlite").unlink()
    p = procs.start(
        [bins["broker"], "--listen", f"{HOST}:0", "--profile", "mqtt311", "--data-dir", data],
        name="broker",
    )
    assert p.wait(WAIT) == 1, p.describe()
    assert str(data / "store.sqlite") in "\n".join(p.err())
