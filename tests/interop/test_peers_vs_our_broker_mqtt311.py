"""mosquitto_pub / mosquitto_sub and paho-mqtt against the example broker (the crate's
`Broker` over TCP) with the `mqtt311` profile: the OASIS standard, exactly."""

import signal
import socket
import threading
import time

import pytest

from conftest import HOST, QUIET, WAIT, messages, payloads_covering, mosquitto_pub, mosquitto_sub, our_client


@pytest.fixture
def broker(our_broker):
    return our_broker("mqtt311")


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_mosquitto_clients_exchange_messages_at_each_qos(procs, broker, qos):
    sub = mosquitto_sub(procs, broker.port, "m/+/x", qos)
    mosquitto_pub(procs, broker.port, "m/a/x", qos, "-m", f"one-{qos}")
    mosquitto_pub(procs, broker.port, "m/b/x", qos, "-m", f"two-{qos}")
    assert messages(sub, 2) == [(qos, 0, f"one-{qos}"), (qos, 0, f"two-{qos}")]


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_paho_clients_exchange_messages_at_each_qos(paho, broker, qos):
    sub = paho(broker.port, client_id=f"paho-sub-{qos}")
    assert sub.subscribe("p/#", 2) == [2]
    publisher = paho(broker.port, client_id=f"paho-pub-{qos}")
    assert publisher.publish("p/q", f"paho-{qos}", qos)
    (m,) = sub.expect(1)
    assert (m.topic, m.payload, m.qos, m.retain) == ("p/q", f"paho-{qos}".encode(), qos, False)
    publisher.disconnect()
    sub.disconnect()


def test_delivered_qos_is_the_lower_of_publish_and_subscription(paho, broker):
    # MQTT-3.8.4-6
    sub = paho(broker.port, client_id="downgrade")
    assert sub.subscribe("d/t", 1) == [1]
    publisher = paho(broker.port)
    assert publisher.publish("d/t", "at-two", 2)
    (m,) = sub.expect(1)
    assert (m.payload, m.qos) == (b"at-two", 1)


def test_retained_message_is_set_replaced_and_cleared(procs, paho, broker):
    # MQTT-3.3.1-5, MQTT-3.3.1-6, MQTT-3.3.1-8, MQTT-3.3.1-10, MQTT-3.3.1-11
    mosquitto_pub(procs, broker.port, "r/t", 1, "-r", "-m", "first")
    mosquitto_pub(procs, broker.port, "r/t", 1, "-r", "-m", "second")
    late = paho(broker.port, client_id="late-1")
    assert late.subscribe("r/#", 1) == [1]
    (m,) = late.expect(1)
    assert (m.topic, m.payload, m.retain) == ("r/t", b"second", True)
    late.nothing()
    # A retained message with an empty payload clears it; it is still forwarded to the
    # subscribers already there.
    mosquitto_pub(procs, broker.port, "r/t", 1, "-r", "-n")
    (cleared,) = late.expect(1)
    assert cleared.payload == b""
    later = paho(broker.port, client_id="late-2")
    assert later.subscribe("r/#", 1) == [1]
    later.nothing()


def test_non_retained_publish_leaves_the_retained_message(procs, paho, broker):
    # MQTT-3.3.1-12
    mosquitto_pub(procs, broker.port, "keep/t", 0, "-r", "-m", "kept")
    mosquitto_pub(procs, broker.port, "keep/t", 0, "-m", "passing")
    late = paho(broker.port)
    assert late.subscribe("keep/t", 0) == [0]
    (m,) = late.expect(1)
    assert (m.payload, m.retain) == (b"kept", True)


def test_will_is_published_when_mosquitto_sub_is_killed(procs, paho, broker):
    # MQTT-3.1.2-8: the will is published when the connection closes without DISCONNECT.
    watcher = paho(broker.port, client_id="watcher")
    assert watcher.subscribe("will/#", 1) == [1]
    dying = mosquitto_sub(
        procs, broker.port, "anything", 0, "--will-topic", "will/sub", "--will-payload", "sub died",
        "--will-qos", "1",
    )
    dying.kill9()
    (m,) = watcher.expect(1)
    assert (m.topic, m.payload, m.qos) == ("will/sub", b"sub died", 1)


def test_will_is_published_when_a_paho_client_drops_its_socket(paho, broker):
    watcher = paho(broker.port, client_id="watcher")
    assert watcher.subscribe("will/#", 2) == [2]
    dying = paho(broker.port, client_id="dying", will=("will/paho", "paho died", 2, False))
    dying.drop()
    (m,) = watcher.expect(1)
    assert (m.topic, m.payload, m.qos) == ("will/paho", b"paho died", 2)


def test_retained_will_becomes_the_retained_message(paho, broker):
    # MQTT-3.1.2-17
    watcher = paho(broker.port)
    assert watcher.subscribe("will/kept", 1) == [1]
    dying = paho(broker.port, client_id="dying", will=("will/kept", "gone", 1, True))
    dying.drop()
    (live,) = watcher.expect(1)  # the will is out: it is now the retained message
    assert (live.payload, live.retain) == (b"gone", False)
    late = paho(broker.port)
    assert late.subscribe("will/kept", 1) == [1]
    (m,) = late.expect(1)
    assert (m.payload, m.retain) == (b"gone", True)


def test_will_is_not_published_after_disconnect(procs, paho, broker):
    # MQTT-3.1.2-10: DISCONNECT discards the will.
    watcher = paho(broker.port, client_id="watcher")
    assert watcher.subscribe("will/#", 1) == [1]
    mosquitto_pub(
        procs, broker.port, "elsewhere", 1, "-m", "bye", "--will-topic", "will/pub", "--will-payload", "x"
    )
    polite = paho(broker.port, client_id="polite", will=("will/paho", "x", 1, False))
    polite.disconnect()
    watcher.nothing()


def test_persistent_session_keeps_subscriptions_and_queues_qos1_and_qos2(procs, paho, broker):
    # MQTT-3.1.2-4, MQTT-3.1.2-5, MQTT-3.2.2-2
    first = paho(broker.port, client_id="persistent", clean_session=False)
    assert not first.session_present
    assert first.subscribe("ps/#", 2) == [2]
    first.disconnect()
    mosquitto_pub(procs, broker.port, "ps/a", 1, "-m", "qos1 while away")
    mosquitto_pub(procs, broker.port, "ps/b", 2, "-m", "qos2 while away")
    mosquitto_pub(procs, broker.port, "ps/c", 0, "-m", "qos0 while away")
    again = paho(broker.port, client_id="persistent", clean_session=False)
    assert again.session_present
    got = again.expect(2)
    assert [(m.payload, m.qos) for m in got] == [(b"qos1 while away", 1), (b"qos2 while away", 2)]
    # QoS 0 is not queued for an offline session (the broker's documented choice).
    again.nothing()
    # The subscription itself survived too.
    mosquitto_pub(procs, broker.port, "ps/d", 1, "-m", "now")
    (m,) = again.expect(1)
    assert m.payload == b"now"


def test_clean_session_discards_the_stored_session(procs, paho, broker):
    # MQTT-3.1.2-6, MQTT-3.2.2-1
    first = paho(broker.port, client_id="forgetful", clean_session=False)
    assert first.subscribe("cs/#", 1) == [1]
    first.disconnect()
    mosquitto_pub(procs, broker.port, "cs/a", 1, "-m", "lost with the session")
    again = paho(broker.port, client_id="forgetful", clean_session=True)
    assert not again.session_present
    again.nothing()


def test_mosquitto_sub_resumes_its_persistent_session(procs, broker):
    args = ("-c", "-i", "mosq-persistent")
    procs.run(
        ["mosquitto_sub", "-V", "mqttv311", "-h", "127.0.0.1", "-p", broker.port, "-t", "mps", "-q", "1", "-E", *args]
    )
    mosquitto_pub(procs, broker.port, "mps", 1, "-m", "queued-1")
    mosquitto_pub(procs, broker.port, "mps", 1, "-m", "queued-2")
    again = procs.run(
        ["mosquitto_sub", "-V", "mqttv311", "-h", "127.0.0.1", "-p", broker.port, "-t", "mps", "-q", "1", "-C", "2",
         "-W", "10", *args]
    )
    assert again.out() == ["queued-1", "queued-2"]


def test_takeover_closes_the_older_connection(paho, broker):
    # MQTT-3.1.4-2
    older = paho(broker.port, client_id="twin")
    newer = paho(broker.port, client_id="twin")
    assert older.closed.wait(WAIT)
    assert not newer.closed.is_set()
    assert newer.publish("twin/t", "still here", 1)


@pytest.mark.parametrize("profile,qos", [("mqtt311", 2), ("aws-iot", 1)])
def test_our_client_and_our_broker_talk(procs, bins, our_broker, profile, qos):
    broker = our_broker(profile)
    args = ("--profile", profile)
    sub = procs.start(our_client(bins, "sub", broker.port, "self/#", qos, "--count", 2, *args), name="our-sub")
    sub.wait_line(lambda l: l.startswith("subscribed"))
    procs.run(our_client(bins, "pub", broker.port, "self/t", qos, "--message", "to myself", "--count", 2, *args))
    assert sub.wait(WAIT) == 0, sub.describe()
    assert sub.out() == ["to myself", "to myself"]


def test_denied_subscription_gets_the_suback_failure_code(paho, our_broker):
    broker = our_broker("mqtt311", "--deny-subscribe", "secret/#")
    c = paho(broker.port)
    # MQTT-3.9.3-1: one code per filter, in order; 0x80 for the refused one.
    assert c.subscribe([("open/t", 1), ("secret/a", 1), ("secret/#", 0)]) == [1, 128, 128]


def test_denied_publish_is_acknowledged_and_not_routed(paho, our_broker):
    broker = our_broker("mqtt311", "--deny-publish", "locked/#")
    sub = paho(broker.port)
    assert sub.subscribe("#", 1) == [1]
    publisher = paho(broker.port)
    assert publisher.publish("locked/door", "open sesame", 1)
    assert publisher.publish("free/door", "hello", 1)
    (m,) = sub.expect(1)
    assert m.topic == "free/door"
    broker.proc.wait_line(lambda l: "publish to locked/door not authorized" in l)


def test_payload_over_the_limit_closes_the_connection(paho, our_broker):
    broker = our_broker("mqtt311", "--max-packet-size", "1000")
    c = paho(broker.port)
    assert c.publish("big", "x" * 999, 1)
    assert not c.publish("big", "x" * 1001, 1, timeout=QUIET * 3)
    assert c.closed.wait(WAIT)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_broker_stops_cleanly_on_a_signal(paho, broker, sig):
    c = paho(broker.port)
    assert c.subscribe("x", 1) == [1]
    broker.proc.send(sig)
    assert broker.proc.wait(WAIT) == 0, broker.proc.describe()
    assert any(l.endswith(" stopped") for l in broker.proc.err()), broker.proc.describe()
    assert c.closed.wait(WAIT)


def test_unsubscribe_stops_the_messages(paho, broker):
    # MQTT-3.10.4-1, MQTT-3.10.4-4
    sub = paho(broker.port)
    assert sub.subscribe("u/t", 1) == [1]
    publisher = paho(broker.port)
    assert publisher.publish("u/t", "before", 1)
    (m,) = sub.expect(1)
    assert m.payload == b"before"
    unsubscribed = threading.Event()
    sub.c.on_unsubscribe = lambda *args: unsubscribed.set()
    sub.c.unsubscribe("u/t")
    assert unsubscribed.wait(WAIT)
    assert publisher.publish("u/t", "after", 1)
    sub.nothing()


def test_silent_connection_is_closed_after_one_and_a_half_keep_alives(paho, broker):
    # MQTT-3.1.2-24: a 1 s keep-alive and nothing sent: closed after 1.5 s, will published.
    watcher = paho(broker.port, client_id="watcher")
    assert watcher.subscribe("will/#", 1) == [1]
    silent = socket.create_connection((HOST, broker.port), timeout=WAIT)
    try:
        will = bytes([0, 9]) + b"will/idle" + bytes([0, 4]) + b"idle"
        body = bytes([0, 4]) + b"MQTT" + bytes([4, 0x0E, 0, 1]) + bytes([0, 6]) + b"silent" + will
        silent.sendall(bytes([0x10, len(body)]) + body)
        assert silent.recv(4) == bytes([0x20, 2, 0, 0])  # CONNACK, accepted
        started = time.monotonic()
        assert silent.recv(1) == b""  # closed by the broker
        waited = time.monotonic() - started
        assert 1.4 <= waited < 5.0, waited
    finally:
        silent.close()
    (m,) = watcher.expect(1)
    assert (m.topic, m.payload, m.qos) == ("will/idle", b"idle", 1)


@pytest.mark.parametrize("qos", [1, 2])
def test_our_publisher_resumes_its_session_on_our_broker(procs, bins, broker, qos):
    # The same resumption as against mosquitto, with our broker on the other side: its
    # QoS 2 inbound state (ids awaiting PUBREL) survives in the stored session.
    sub = mosquitto_sub(procs, broker.port, "resume", 2)
    publisher = procs.run(
        our_client(
            bins, "pub", broker.port, "resume", qos, "--message", "n{n}", "--count", 40,
            "--drop-after", 20, "--client-id", f"resume-{qos}", "--clean-session", "false",
        )
    )
    assert "connected session_present=true" in publisher.err(), publisher.describe()
    expected = [f"n{i}" for i in range(40)]
    got = payloads_covering(sub, expected)
    if qos == 2:
        # Exactly once: every message, no duplicate.
        assert sorted(got, key=lambda s: int(s[1:])) == expected
    else:
        # At least once: every message, perhaps some twice (the resent ones).
        assert set(got) == set(expected)


def test_a_megabyte_payload_is_routed_intact(paho, broker):
    payload = bytes(range(256)) * 4096
    sub = paho(broker.port)
    assert sub.subscribe("big/t", 1) == [1]
    publisher = paho(broker.port)
    assert publisher.publish("big/t", payload, 1)
    (m,) = sub.expect(1)
    assert m.payload == payload


def test_inflight_window_and_queue_bound_hold_back_and_drop(paho, our_broker):
    # --max-inflight 5: at most 5 unacknowledged deliveries; --max-queued 10: 10 more
    # wait; the rest are dropped and logged, never silently.
    broker = our_broker("mqtt311", "--max-inflight", "5", "--max-queued", "10")
    sub = paho(broker.port, client_id="slow", manual_ack=True)
    assert sub.subscribe("w/t", 1) == [1]
    publisher = paho(broker.port)
    for i in range(20):
        assert publisher.publish("w/t", f"m{i}", 1)
    first = sub.expect(5)
    sub.nothing()
    drops = broker.proc.wait_lines(5, stream="err", pred=lambda l: "dropped: QueueFull" in l)
    assert all("client slow: message on w/t" in l for l in drops), drops
    got = first
    batch = first
    for _ in range(2):  # each round of acks opens the window for the next 5
        for m in batch:
            sub.c.ack(m.mid, m.qos)
        batch = sub.expect(5)
        got += batch
    for m in batch:
        sub.c.ack(m.mid, m.qos)
    sub.nothing()
    assert [m.payload.decode() for m in got] == [f"m{i}" for i in range(15)]


def test_logins_are_checked_by_the_authorizer(procs, paho, our_broker):
    # MQTT-3.2.2-5: a refused CONNECT gets its return code, then the connection closes.
    broker = our_broker("mqtt311", "--user", "alice:secret")
    base = ["mosquitto_pub", "-V", "mqttv311", "-h", HOST, "-p", broker.port, "-t", "t", "-m", "x"]
    procs.run([*base, "-u", "alice", "-P", "secret"])
    wrong = procs.run([*base, "-u", "alice", "-P", "guess"], check=False)
    assert wrong.popen.returncode != 0
    assert any("bad user name or password" in l.lower() for l in wrong.err()), wrong.describe()
    anonymous = procs.run(base, check=False)
    assert anonymous.popen.returncode != 0
    assert any("not authori" in l.lower() for l in anonymous.err()), anonymous.describe()
    ok = paho(broker.port, login=("alice", "secret"))
    assert not ok.rc.is_failure
    refused = paho(broker.port, login=("mallory", "secret"))
    assert refused.rc.is_failure
    assert refused.closed.wait(WAIT)


def test_a_client_beyond_the_inbound_qos2_bound_is_closed_not_silently_dropped(procs, bins, our_broker):
    # The bound on QoS 2 messages awaiting PUBREL is enforced by closing the connection,
    # never by acknowledging and dropping (mosquitto 2.0.11 drops beyond 20 instead).
    broker = our_broker("mqtt311", "--max-inbound-qos2", "10")
    greedy = procs.run(
        our_client(bins, "pub", broker.port, "q2/burst", 2, "--message", "m", "--count", 50,
                   "--max-inflight", 50),
        check=False,
    )
    assert greedy.popen.returncode == 1, greedy.describe()
    broker.proc.wait_line(lambda l: "Policy(TooManyInboundQos2)" in l)
    polite = procs.run(
        our_client(bins, "pub", broker.port, "q2/burst", 2, "--message", "m", "--count", 50,
                   "--max-inflight", 10)
    )
    assert "acknowledged 50" in polite.err(), polite.describe()
