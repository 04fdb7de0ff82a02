"""paho-mqtt against the example broker with the `aws-iot-2025` profile: AWS IoT Core
as AWS documents it today, one test per point."""

import json
import socket
import time

import pytest

from conftest import HOST, QUIET, WAIT


@pytest.fixture
def broker(our_broker):
    return our_broker("aws-iot-2025")


def raw_connect(client_id):
    """A CONNECT with clean session 1 and keep-alive 60 s."""
    cid = client_id.encode()
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(cid).to_bytes(2, "big") + cid
    return bytes([0x10, len(body)]) + body


def test_a_retained_message_reaches_only_an_exact_filter_and_an_empty_one_deletes_it(paho, broker):
    pub = paho(broker.port, client_id="r-pub")
    assert pub.publish("cfg/dev1", "v1", 1, retain=True)
    exact = paho(broker.port, client_id="r-exact")
    assert exact.subscribe("cfg/dev1", 1) == [1]
    (m,) = exact.expect(1)
    assert (m.payload, m.retain) == (b"v1", True)
    wild = paho(broker.port, client_id="r-wild")
    assert wild.subscribe([("cfg/+", 1), ("cfg/#", 1)]) == [1, 1]
    wild.nothing()
    assert pub.publish("cfg/dev1", "", 1, retain=True)
    late = paho(broker.port, client_id="r-late")
    assert late.subscribe("cfg/dev1", 1) == [1]
    late.nothing()


def test_retain_on_a_reserved_topic_closes_the_connection(paho, broker):
    c = paho(broker.port, client_id="r-reserved")
    assert not c.publish("$aws/rules/r/t", "v", 1, retain=True, timeout=QUIET * 2)
    assert c.closed.wait(WAIT)
    broker.proc.wait_line(lambda l: "RetainOnReservedTopic" in l)


def test_each_message_of_a_shared_subscription_goes_to_one_member(paho, broker):
    m1 = paho(broker.port, client_id="s-m1")
    m2 = paho(broker.port, client_id="s-m2")
    assert m1.subscribe("$share/workers/jobs/#", 1) == [1]
    assert m2.subscribe("$share/workers/jobs/#", 1) == [1]
    pub = paho(broker.port, client_id="s-pub")
    for i in range(4):
        assert pub.publish("jobs/x", f"j{i}", 1)
    got1 = [m.payload for m in m1.expect(2)]
    got2 = [m.payload for m in m2.expect(2)]
    assert sorted(got1 + got2) == [b"j0", b"j1", b"j2", b"j3"]
    m1.nothing()
    m2.nothing()


def test_shared_messages_wait_while_every_member_is_offline(paho, broker):
    m = paho(broker.port, client_id="q-m1", clean_session=False)
    assert m.subscribe("$share/g/q/t", 1) == [1]
    m.drop()
    pub = paho(broker.port, client_id="q-pub")
    assert pub.publish("q/t", "held", 1)
    time.sleep(1.1)  # AWS takes one CONNECT per second per client id
    back = paho(broker.port, client_id="q-m1", clean_session=False)
    assert back.session_present
    (got,) = back.expect(1)
    assert got.payload == b"held"


def test_unimplemented_reserved_topics_close_and_basic_ingest_is_accepted(paho, broker):
    ingest = paho(broker.port, client_id="i-pub")
    assert ingest.publish("$aws/rules/store/a/b/c/d/e/f/g/h", "x", 1)
    assert not ingest.closed.is_set()
    shadow = paho(broker.port, client_id="i-shadow")
    assert not shadow.publish("$aws/things/t/shadow/update", "{}", 1, timeout=QUIET * 2)
    assert shadow.closed.wait(WAIT)
    sub = paho(broker.port, client_id="i-sub")
    assert sub.rc == 0 and not sub.closed.is_set(), broker.proc.describe()
    assert sub.subscribe("$aws/things/t/#", 0, timeout=QUIET * 2) is None
    assert sub.closed.wait(WAIT)


def test_the_rate_and_subscription_quotas_hold(paho, broker):
    sub = paho(broker.port, client_id="qt-sub")
    assert sub.subscribe("qt/t", 0) == [0]
    pub = paho(broker.port, client_id="qt-pub")
    infos = [pub.c.publish("qt/t", "x", 1) for _ in range(101)]
    deadline = time.monotonic() + WAIT
    while sum(i.is_published() for i in infos) < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(QUIET)
    assert sum(i.is_published() for i in infos) == 100
    assert len(sub.expect(100)) == 100
    sub.nothing()
    assert sub.subscribe([(f"f/{i}", 1) for i in range(9)]) == [1] * 8 + [128]
    # A second CONNECT of one client id within a second: closed without CONNACK, and
    # the first connection stays.
    with socket.create_connection((HOST, broker.port), timeout=WAIT) as first:
        first.sendall(raw_connect("qt-raw"))
        assert first.recv(16) == b"\x20\x02\x00\x00"
        with socket.create_connection((HOST, broker.port), timeout=WAIT) as second:
            second.sendall(raw_connect("qt-raw"))
            assert second.recv(16) == b""
        first.sendall(b"\xc0\x00")
        assert first.recv(16) == b"\xd0\x00"


def test_lifecycle_events_announce_connects_disconnects_and_subscriptions(paho, broker):
    watcher = paho(broker.port, client_id="lc-watcher")
    assert watcher.subscribe(
        [
            ("$aws/events/presence/connected/lc-dev", 1),
            ("$aws/events/presence/disconnected/lc-dev", 1),
            ("$aws/events/subscriptions/subscribed/lc-dev", 1),
        ]
    ) == [1, 1, 1]
    dev = paho(broker.port, client_id="lc-dev")
    assert dev.subscribe("lc/a", 0) == [0]
    dev.disconnect()
    events = [json.loads(m.payload) for m in watcher.expect(3)]
    assert [e["eventType"] for e in events] == ["connected", "subscribed", "disconnected"]
    assert all(e["clientId"] == "lc-dev" for e in events)
    assert events[1]["topics"] == ["lc/a"]
    assert events[2]["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT"
    assert events[2]["clientInitiatedDisconnect"] is True
    assert events[0]["sessionIdentifier"] == events[2]["sessionIdentifier"]


def test_an_unacknowledged_qos1_message_is_resent_before_the_retry_limit_and_not_after(paho, our_broker):
    # AWS retries an unacknowledged QoS 1 delivery for up to an hour
    # (https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits);
    # the broker's flag shortens the hour to 3 s.
    broker = our_broker("aws-iot-2025", "--qos1-retry-ms", "3000")
    sub = paho(broker.port, client_id="rt-sub", clean_session=False, manual_ack=True)
    assert sub.subscribe("rt/t", 1) == [1]
    pub = paho(broker.port, client_id="rt-pub")
    assert pub.publish("rt/t", "m", 1)
    sent_at = time.monotonic()
    (first,) = sub.expect(1)  # manual acknowledgement: never sent
    assert first.payload == b"m"
    sub.drop()
    time.sleep(1.1)  # AWS takes one CONNECT per second per client id
    back = paho(broker.port, client_id="rt-sub", clean_session=False, manual_ack=True)
    assert back.session_present
    (again,) = back.expect(1)
    assert again.payload == b"m"
    assert time.monotonic() - sent_at < 3.0, "resent only after the limit: the test ran too slowly"
    back.drop()
    time.sleep(max(0.0, sent_at + 3.5 - time.monotonic()))
    broker.proc.wait_line(lambda l: "rt-sub" in l and "RetryExpired" in l)
    last = paho(broker.port, client_id="rt-sub", clean_session=False, manual_ack=True)
    assert last.session_present
    last.nothing()


def test_a_durable_broker_restarted_after_a_retry_drop_does_not_resend_the_dropped_message(
    paho, our_broker, tmp_path
):
    args = ("aws-iot-2025", "--qos1-retry-ms", "3000", "--data-dir", str(tmp_path / "data"))
    broker = our_broker(*args)
    sub = paho(broker.port, client_id="rd-sub", clean_session=False, manual_ack=True)
    assert sub.subscribe("rd/t", 1) == [1]
    pub = paho(broker.port, client_id="rd-pub")
    assert pub.publish("rd/t", "early", 1)
    (m,) = sub.expect(1)
    assert m.payload == b"early"
    time.sleep(1.5)
    assert pub.publish("rd/t", "late", 1)
    (m,) = sub.expect(1)
    assert m.payload == b"late"
    sub.drop()
    pub.disconnect()
    broker.proc.wait_line(lambda l: "rd-sub" in l and "RetryExpired" in l)
    # The drop is stored before it is logged; stop before the late message's limit.
    broker.proc.stop()
    broker = our_broker(*args)
    back = paho(broker.port, client_id="rd-sub", clean_session=False, manual_ack=True)
    assert back.session_present
    (m,) = back.expect(1)
    assert m.payload == b"late"
    back.nothing()
