"""paho-mqtt against the example broker with the `aws-iot` profile: AWS IoT Core's
documented departures from MQTT 3.1.1."""

import socket

import pytest

from conftest import HOST, QUIET, WAIT


@pytest.fixture
def broker(our_broker):
    return our_broker("aws-iot")


def test_qos1_publish_and_subscribe_work(paho, broker):
    sub = paho(broker.port, client_id="aws-sub")
    assert sub.subscribe("dt/+/temp", 1) == [1]
    publisher = paho(broker.port, client_id="aws-pub")
    assert publisher.publish("dt/k1/temp", "21.5", 1)
    assert publisher.publish("dt/k2/temp", "19.0", 0)
    got = sub.expect(2)
    assert [(m.topic, m.payload, m.qos) for m in got] == [
        ("dt/k1/temp", b"21.5", 1),
        ("dt/k2/temp", b"19.0", 0),
    ]


def test_hash_does_not_match_the_parent_level(paho, broker):
    sub = paho(broker.port)
    assert sub.subscribe("a/#", 1) == [1]
    publisher = paho(broker.port)
    assert publisher.publish("a", "parent", 1)
    assert publisher.publish("a/b", "child", 1)
    (m,) = sub.expect(1)
    assert m.payload == b"child"
    sub.nothing()


def test_retained_publish_closes_the_connection(paho, broker):
    c = paho(broker.port, client_id="retainer")
    assert not c.publish("r/t", "keep me", 1, retain=True, timeout=QUIET * 3)
    assert c.closed.wait(WAIT)
    broker.proc.wait_line(lambda l: "Policy(Retain)" in l)


def test_qos2_publish_is_not_acknowledged_nor_routed(paho, broker):
    sub = paho(broker.port)
    assert sub.subscribe("q2/t", 1) == [1]
    c = paho(broker.port, client_id="qos2-publisher")
    assert not c.publish("q2/t", "exactly once?", 2, timeout=QUIET * 2)
    sub.nothing()
    # The connection is still open and QoS 1 still works on it.
    assert not c.closed.is_set()
    assert c.publish("q2/t", "at least once", 1)
    (m,) = sub.expect(1)
    assert m.payload == b"at least once"


def test_qos2_subscribe_gets_no_suback(paho, broker):
    c = paho(broker.port, client_id="qos2-subscriber")
    assert c.subscribe("q2/s", 2, timeout=QUIET * 2) is None
    assert not c.closed.is_set()
    assert c.subscribe("q2/s", 1) == [1]


def test_a_second_client_with_the_same_id_takes_over(paho, broker):
    first = paho(broker.port, client_id="device-1")
    assert first.subscribe("t/first", 1) == [1]
    second = paho(broker.port, client_id="device-1")
    assert first.closed.wait(WAIT), "the first connection was not closed"
    assert not second.closed.is_set()
    assert second.publish("t/second", "mine now", 1)
    broker.proc.wait_line(lambda l: "closed by the broker: Takeover" in l)


def test_reconnect_without_clean_session_resumes_and_receives_queued_qos1(paho, broker):
    first = paho(broker.port, client_id="sleeper", clean_session=False)
    assert not first.session_present
    assert first.subscribe("cmd/sleeper", 1) == [1]
    first.disconnect()
    publisher = paho(broker.port, client_id="waker")
    for i in range(3):
        assert publisher.publish("cmd/sleeper", f"queued-{i}", 1)
    again = paho(broker.port, client_id="sleeper", clean_session=False)
    assert again.session_present
    got = again.expect(3)
    assert [(m.payload, m.qos) for m in got] == [(b"queued-0", 1), (b"queued-1", 1), (b"queued-2", 1)]
    again.nothing()


def test_unacknowledged_qos1_is_resent_with_a_fresh_id_and_no_dup(paho, broker):
    # AWS IoT Core resends with a new packet id and DUP=0 (the profile's FreshId).
    sub = paho(broker.port, client_id="aws-slow-acker", clean_session=False, manual_ack=True)
    assert sub.subscribe("resend/t", 1) == [1]
    publisher = paho(broker.port)
    assert publisher.publish("resend/t", "ack me", 1)
    (first,) = sub.expect(1)
    sub.drop()
    again = paho(broker.port, client_id="aws-slow-acker", clean_session=False, manual_ack=True)
    assert again.session_present
    (resent,) = again.expect(1)
    assert resent.payload == b"ack me"
    assert not resent.dup
    assert resent.mid != first.mid
    again.c.ack(resent.mid, resent.qos)


def test_keep_alive_is_clamped_to_at_least_thirty_seconds(broker):
    # A client asking for 1 s is not closed after 1.5 s of silence: AWS applies 30 s.
    s = socket.create_connection((HOST, broker.port), timeout=WAIT)
    try:
        body = bytes([0, 4]) + b"MQTT" + bytes([4, 0x02, 0, 1]) + bytes([0, 6]) + b"sleepy"
        s.sendall(bytes([0x10, len(body)]) + body)
        assert s.recv(4) == bytes([0x20, 2, 0, 0])
        s.settimeout(2.5)
        with pytest.raises(socket.timeout):
            s.recv(1)  # neither bytes nor a close
    finally:
        s.close()


def test_packets_sent_before_connack_close_the_connection(broker):
    s = socket.create_connection((HOST, broker.port), timeout=WAIT)
    try:
        body = bytes([0, 4]) + b"MQTT" + bytes([4, 0x02, 0, 60]) + bytes([0, 5]) + b"eager"
        ping = bytes([0xC0, 0])
        s.sendall(bytes([0x10, len(body)]) + body + ping)  # CONNECT and PINGREQ at once
        data = b""
        while chunk := s.recv(64):
            data += chunk
        assert data == bytes([0x20, 2, 0, 0])  # CONNACK, then the close; no PINGRESP
    finally:
        s.close()
