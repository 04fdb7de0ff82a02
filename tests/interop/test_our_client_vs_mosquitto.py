"""The example client (the crate's `client::Client` over TCP) against the mosquitto broker
and the mosquitto_pub / mosquitto_sub clients."""

import time

import pytest

from conftest import QUIET, WAIT, messages, payloads_covering, mosquitto_pub, mosquitto_sub, our_client


def start_our_sub(procs, bins, port, topic, qos, *extra):
    p = procs.start(our_client(bins, "sub", port, topic, qos, *extra), name="our-sub")
    p.wait_line(lambda l: l.startswith("subscribed"))
    return p


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_our_subscriber_receives_what_mosquitto_pub_publishes(procs, bins, mosquitto, qos):
    sub = start_our_sub(procs, bins, mosquitto.port, "ours/in/#", qos, "--count", 2)
    mosquitto_pub(procs, mosquitto.port, "ours/in/a", qos, "-m", f"first-{qos}")
    mosquitto_pub(procs, mosquitto.port, "ours/in/b", qos, "-m", f"second-{qos}")
    assert sub.wait(WAIT) == 0, sub.describe()
    assert sub.out() == [f"first-{qos}", f"second-{qos}"]


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_mosquitto_sub_receives_what_our_publisher_publishes(procs, bins, mosquitto, qos):
    sub = mosquitto_sub(procs, mosquitto.port, "ours/out", 2)
    publisher = procs.run(
        our_client(bins, "pub", mosquitto.port, "ours/out", qos, "--message", f"hello-{qos}", "--count", 3)
    )
    # Every message was acknowledged before our publisher disconnected.
    if qos > 0:
        assert "acknowledged 3" in publisher.err(), publisher.describe()
    assert messages(sub, 3) == [(qos, 0, f"hello-{qos}")] * 3


def test_our_publisher_waits_for_every_ack_beyond_its_inflight_window(procs, bins, mosquitto):
    # 300 QoS 1 messages: more than the inflight window, so publishing waits for PUBACKs.
    sub = mosquitto_sub(procs, mosquitto.port, "ours/many", 1)
    procs.run(our_client(bins, "pub", mosquitto.port, "ours/many", 1, "--message", "m", "--count", 300))
    assert len(messages(sub, 300)) == 300


def test_our_persistent_session_resumes_after_the_client_is_killed(procs, bins, mosquitto):
    # MQTT-3.1.2-4, MQTT-3.1.2-5: a clean-session-0 subscription outlives the connection
    # and QoS 1 messages published meanwhile are delivered on reconnect.
    args = ("--client-id", "ours-persistent", "--clean-session", "false")
    first = start_our_sub(procs, bins, mosquitto.port, "ours/ps", 1, "--count", 0, *args)
    assert "connected session_present=false" in first.err()
    first.kill9()  # kill -9: no DISCONNECT, the socket just goes away
    for i in range(3):
        mosquitto_pub(procs, mosquitto.port, "ours/ps", 1, "-m", f"while-away-{i}")
    again = procs.start(
        our_client(bins, "sub", mosquitto.port, "ours/ps", 1, "--count", 3, *args), name="our-sub"
    )
    assert again.wait(WAIT) == 0, again.describe()
    assert "connected session_present=true" in again.err()
    assert again.out() == ["while-away-0", "while-away-1", "while-away-2"]


def test_our_client_keeps_an_idle_connection_alive_with_pingreq(procs, bins, mosquitto):
    # MQTT-3.1.2-23: with a 1 s keep-alive mosquitto closes a silent client after 1.5 s;
    # our idle subscriber pings, so a message sent 3.5 s later still reaches it.
    sub = start_our_sub(procs, bins, mosquitto.port, "ours/idle", 1, "--keep-alive", 1)
    time.sleep(3.5)
    assert sub.running(), sub.describe()
    mosquitto_pub(procs, mosquitto.port, "ours/idle", 1, "-m", "still there")
    assert sub.wait(WAIT) == 0, sub.describe()
    assert sub.out() == ["still there"]


def test_large_payloads_cross_in_many_reads(procs, bins, mosquitto):
    payload = "".join(chr(ord("a") + i % 26) for i in range(100_000))
    sub = start_our_sub(procs, bins, mosquitto.port, "ours/big", 1, "--count", 2)
    procs.run(our_client(bins, "pub", mosquitto.port, "ours/big", 1, "--message", payload, "--count", 2))
    assert sub.wait(WAIT) == 0, sub.describe()
    assert sub.out() == [payload, payload]


@pytest.mark.parametrize("qos", [1, 2])
def test_our_publisher_resends_after_a_dropped_connection(procs, bins, mosquitto, qos):
    # MQTT-4.4.0-1: after a reconnect with clean session 0 the client resends every
    # unacknowledged PUBLISH (DUP=1) and PUBREL; at QoS 2 the subscriber still gets
    # each message exactly once (MQTT-4.3.3-2), at QoS 1 at least once.
    sub = mosquitto_sub(procs, mosquitto.port, "ours/resume", 2)
    publisher = procs.run(
        our_client(
            bins, "pub", mosquitto.port, "ours/resume", qos, "--message", "n{n}", "--count", 40,
            "--drop-after", 20, "--client-id", f"ours-resume-{qos}", "--clean-session", "false",
        )
    )
    assert any(l.startswith("dropped the connection") for l in publisher.err()), publisher.describe()
    assert "connected session_present=true" in publisher.err(), publisher.describe()
    expected = [f"n{i}" for i in range(40)]
    got = payloads_covering(sub, expected)
    if qos == 2:
        # Exactly once: every message, no duplicate.
        assert sorted(got, key=lambda s: int(s[1:])) == expected
    else:
        # At least once: every message, perhaps some twice (the resent ones).
        assert set(got) == set(expected)
