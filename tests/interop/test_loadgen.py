"""The load generator (tokio/examples/loadgen.rs) against the example broker and mosquitto:
every message reaches every subscriber, within a bounded time."""

import json

from conftest import HOST

PUBLISHERS = 5
EACH = 100
SUBSCRIBERS = 2
BOUND = 60  # seconds, on a loaded 2-core machine


def loadgen(procs, bins, port, *extra):
    """Runs the debug loadgen to completion; returns its JSON result and the process."""
    binary = bins["broker"].parent / "loadgen"
    assert binary.exists(), f"{binary} was not built"
    p = procs.run(
        [binary, "--host", HOST, "--port", port, "--publishers", PUBLISHERS, "--messages", EACH,
         "--subscribers", SUBSCRIBERS, "--window", 20, "--timeout-secs", BOUND, "--json", *extra],
        timeout=BOUND + 15,
        check=False,
    )
    lines = [l for l in p.out() if l.startswith("{")]
    assert len(lines) == 1, p.describe()
    return json.loads(lines[0]), p


def assert_complete(result, p):
    assert p.popen.returncode == 0, p.describe()
    assert result["expected"] == PUBLISHERS * EACH * SUBSCRIBERS
    assert result["delivered"] == result["expected"], result
    assert result["lost"] == 0, result
    assert result["errors"] == [], result
    assert 0 < result["seconds"] < BOUND, result


def test_loadgen_delivers_every_qos1_message_to_every_subscriber_through_our_broker(procs, bins, our_broker):
    broker = our_broker("mqtt311")
    result, p = loadgen(procs, bins, broker.port, "--qos", 1)
    assert_complete(result, p)
    assert result["acknowledged"] == PUBLISHERS * EACH, result


def test_loadgen_delivers_every_qos1_message_to_every_subscriber_through_mosquitto(procs, bins, mosquitto):
    result, p = loadgen(procs, bins, mosquitto.port, "--qos", 1)
    assert_complete(result, p)
    assert result["acknowledged"] == PUBLISHERS * EACH, result


def test_loadgen_exits_non_zero_and_reports_the_loss_when_messages_cannot_arrive(procs, bins, our_broker):
    # The broker queues at most 10 QoS 1 deliveries per subscriber and drops the rest;
    # with 500 messages through a subscriber window of 1, some are dropped.
    broker = our_broker("mqtt311", "--max-queued", "10", "--max-inflight", "1")
    result, p = loadgen(procs, bins, broker.port, "--qos", 1, "--timeout-secs", 3)
    assert p.popen.returncode == 1, p.describe()
    assert result["lost"] > 0, result
    assert result["lost"] == result["expected"] - result["delivered"], result
