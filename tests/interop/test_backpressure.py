"""Overload at the example broker's default bounds (1 000 queued, 64 in flight per
session): a burst of 100 publishers x 100 QoS 1 messages to 2 subscribers overflows the
subscribers' queues. Under `--queue-full backpressure` the broker stops reading the
publishers until the queues drain and nothing is lost; under `--queue-full drop` (the
default) messages are lost, and each one is reported in the broker's log (a line each,
up to ten a second, the rest counted) and in its shutdown summary."""

import json
import re

from conftest import HOST

PUBLISHERS = 100
EACH = 100
SUBSCRIBERS = 2
EXPECTED = PUBLISHERS * EACH * SUBSCRIBERS
MORE = re.compile(r"(\d+) more message\(s\) dropped, not logged one by one")
SUMMARY = re.compile(r"summary: publish in \d+, out \d+, dropped (\d+) \(queue-full (\d+),")


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


def drops_logged(lines):
    """The drops the broker logged: one line each, up to ten a second, and the rest as
    counts (`N more message(s) dropped, not logged one by one`)."""
    one_by_one = sum(1 for l in lines if dropped(l))
    counted = sum(int(m.group(1)) for l in lines if (m := MORE.search(l)))
    return one_by_one + counted


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
    # Every message a subscriber's session did not get is in the log: a line each, up to
    # ten a second, the rest counted; and in the summary the broker logs as it stops.
    broker.proc.stop()
    lines = broker.proc.err()
    assert drops_logged(lines) == result["lost"], (result, broker.proc.describe())
    summary = [m for l in lines if (m := SUMMARY.search(l))]
    assert len(summary) == 1, broker.proc.describe()
    assert int(summary[0].group(1)) == int(summary[0].group(2)) == result["lost"]
    assert result["delivered"] + result["lost"] == EXPECTED
