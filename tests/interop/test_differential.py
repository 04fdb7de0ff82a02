"""The same scenarios against mosquitto (the reference) and the example broker with the
`mqtt311` profile: where MQTT 3.1.1 leaves no choice, both must behave alike."""

import pytest

from conftest import WAIT


@pytest.fixture(params=["mosquitto", "ours"])
def port(request):
    if request.param == "mosquitto":
        return request.getfixturevalue("mosquitto").port
    return request.getfixturevalue("our_broker")("mqtt311").port


def test_hash_matches_the_parent_level(paho, port):
    # MQTT-4.7.1-2
    sub = paho(port)
    assert sub.subscribe("sport/tennis/#", 1) == [1]
    publisher = paho(port)
    assert publisher.publish("sport/tennis", "parent", 1)
    assert publisher.publish("sport/tennis/player1", "child", 1)
    assert [m.payload for m in sub.expect(2)] == [b"parent", b"child"]


def test_plus_matches_one_level_only(paho, port):
    # MQTT-4.7.1-3
    sub = paho(port)
    assert sub.subscribe("sport/+", 1) == [1]
    publisher = paho(port)
    assert publisher.publish("sport/tennis/player1", "too deep", 1)
    assert publisher.publish("sport/", "empty level", 1)
    (m,) = sub.expect(1)
    assert m.payload == b"empty level"
    sub.nothing()


def test_wildcards_do_not_match_dollar_topics(paho, port):
    # MQTT-4.7.2-1
    sub = paho(port)
    assert sub.subscribe("#", 1) == [1]
    assert sub.subscribe("+/x", 1) == [1]
    publisher = paho(port)
    assert publisher.publish("$app/x", "hidden", 1)
    assert publisher.publish("app/x", "seen", 1)
    msgs = sub.expect(1)
    assert msgs[0].payload == b"seen"
    # One copy or two (one per matching subscription) are both allowed by MQTT-3.3.5-1;
    # the $ topic must not come.
    while (m := sub.get(0.5)) is not None:
        assert m.payload == b"seen"


def test_retained_flag_is_set_on_subscribe_and_clear_on_live_routing(paho, port):
    # MQTT-3.3.1-8, MQTT-3.3.1-9
    publisher = paho(port)
    assert publisher.publish("ret/flag", "stored", 1, retain=True)
    sub = paho(port)
    assert sub.subscribe("ret/flag", 1) == [1]
    (stored,) = sub.expect(1)
    assert (stored.payload, stored.retain) == (b"stored", True)
    assert publisher.publish("ret/flag", "live", 1, retain=True)
    (live,) = sub.expect(1)
    assert (live.payload, live.retain) == (b"live", False)
    assert publisher.publish("ret/flag", "", 1, retain=True)  # clean up for the next test


def test_retained_message_is_delivered_at_the_lower_qos(paho, port):
    publisher = paho(port)
    assert publisher.publish("ret/qos", "at two", 2, retain=True)
    sub = paho(port)
    assert sub.subscribe("ret/qos", 1) == [1]
    (m,) = sub.expect(1)
    assert (m.payload, m.qos, m.retain) == (b"at two", 1, True)


def test_will_is_published_when_a_session_is_taken_over(paho, port):
    # MQTT-3.1.4-2 closes the older connection; it ended without DISCONNECT, so its will
    # is published (MQTT-3.1.2-8).
    watcher = paho(port)
    assert watcher.subscribe("will/#", 1) == [1]
    older = paho(port, client_id="twin", will=("will/twin", "older gone", 1, False))
    paho(port, client_id="twin")
    assert older.closed.wait(WAIT)
    (m,) = watcher.expect(1)
    assert m.payload == b"older gone"


def test_session_present_reflects_the_stored_session(paho, port):
    # MQTT-3.2.2-1, MQTT-3.2.2-2, MQTT-3.2.2-3
    a = paho(port, client_id="sp", clean_session=False)
    assert not a.session_present
    assert a.subscribe("sp/t", 1) == [1]
    a.disconnect()
    b = paho(port, client_id="sp", clean_session=False)
    assert b.session_present
    b.disconnect()
    c = paho(port, client_id="sp", clean_session=True)
    assert not c.session_present
    c.disconnect()
    d = paho(port, client_id="sp", clean_session=False)
    assert not d.session_present
    d.disconnect()


def test_unacknowledged_qos1_is_resent_with_dup_and_the_same_id(paho, port):
    # MQTT-4.4.0-1, MQTT-3.3.1-1: on resume the server resends the unacknowledged
    # PUBLISH with DUP=1 and its packet identifier.
    sub = paho(port, client_id="slow-acker", clean_session=False, manual_ack=True)
    assert sub.subscribe("resend/t", 1) == [1]
    publisher = paho(port)
    assert publisher.publish("resend/t", "ack me", 1)
    (first,) = sub.expect(1)
    assert not first.dup
    sub.drop()  # no PUBACK, no DISCONNECT
    again = paho(port, client_id="slow-acker", clean_session=False, manual_ack=True)
    assert again.session_present
    (resent,) = again.expect(1)
    assert (resent.payload, resent.dup, resent.mid) == (b"ack me", True, first.mid)
    again.c.ack(resent.mid, resent.qos)
    again.disconnect()
