"""Overload at the example broker's default bounds (1 000 queued, 64 in flight per
session): a burst of 100 publishers x 100 QoS 1 messages to 2 subscribers overflows the
subscribers' queues. Under `--queue-full backpressure` the broker stops reading the
publishers until the queues drain and nothing is lost; under `--queue-full drop` (the
default) messages are lost, and each one is reported in the broker's log."""

import json

from conftest import HOST

PUBLISHERS = 100
EACH = 100
SUBSCRIBERS = 2
EXPECTED = PUBLISHERS * EACH * SUBSCRIBERS


def burst(procs, bins, port, timeout):
    """Runs the burst with the debug loadgen; returns its JSON result and the process."""
    binary = bins["broker"].parent / "loadgen"
    assert binary.exists(), f"{binary} was not built"
    p = procs.run(
        [binary, "--host", HOST, "--port", port, "--publishers", PUBLISHERS, "--messages", EACH,
         "--subscribers", SUBSCRIBERS, "--window", 20, "--qos", 1, "--timeout-secs", timeout,
         "--json"],
        timeout=timeout + 15,
        check=False,
    )
    lines = [l for l in p.out() if l.startswith("{")]
    assert len(lines) == 1, p.describe()
    return json.loads(lines[0]), p


def dropped(line):
    return "dropped: QueueFull" in line


def test_the_burst_loses_nothing_under_backpressure_at_the_default_bounds(procs, bins, our_broker):
    broker = our_broker("mqtt311", "--queue-full", "backpressure")
    result, p = burst(procs, bins, broker.port, 60)
    assert p.popen.returncode == 0, p.describe()
    assert result["expected"] == EXPECTED
    assert result["lost"] == 0, result
    assert result["delivered"] == EXPECTED, result
    assert result["acknowledged"] == PUBLISHERS * EACH, result
    assert result["errors"] == [], result
    assert not any(dropped(l) for l in broker.proc.err()), broker.proc.describe()


def test_the_burst_loses_messages_under_drop_and_the_broker_reports_each(procs, bins, our_broker):
    broker = our_broker("mqtt311", "--queue-full", "drop")
    result, p = burst(procs, bins, broker.port, 10)
    assert p.popen.returncode == 1, p.describe()
    assert result["acknowledged"] == PUBLISHERS * EACH, result
    assert result["lost"] > 0, result
    # One log line per message a subscriber's session did not get.
    broker.proc.wait_lines(result["lost"], stream="err", pred=dropped)
    reports = [l for l in broker.proc.err() if dropped(l)]
    assert len(reports) == result["lost"], result
    assert result["delivered"] + len(reports) == EXPECTED
