"""The example broker's `$SYS/broker/...` topics, read by mosquitto_sub, and the summary
of its counters it logs when a signal stops it."""

import shutil
import signal
import time

import pytest

from conftest import HOST, QUIET, WAIT, mosquitto_pub, need

SYS = "SYS "


def sys_sub(procs, port, topic):
    """A mosquitto_sub on `topic` that prints `SYS <topic>\\t<payload>` per message;
    returns once the SUBACK has arrived."""
    need("mosquitto_sub", shutil.which("mosquitto_sub"))
    p = procs.start(
        [
            "stdbuf", "-oL", "mosquitto_sub", "-V", "mqttv311", "-h", HOST, "-p", port, "-t", topic,
            "-d", "-F", SYS + "%t\t%p",
        ],
        name="mosquitto_sub",
    )
    p.wait_line(lambda l: l.startswith("Subscribed (mid"), stream="out")
    return p


def figures(p):
    """The latest value of every topic the subscriber printed, by topic."""
    latest = {}
    for line in p.out():
        if line.startswith(SYS):
            topic, payload = line[len(SYS):].split("\t", 1)
            latest[topic] = payload
    return latest


def wait_figure(p, topic, pred, timeout=WAIT):
    """The latest value of `topic` once it satisfies `pred`."""
    deadline = time.monotonic() + timeout
    while True:
        value = figures(p).get(topic)
        if value is not None and pred(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{topic} never satisfied the test: {value!r}\n{p.describe()}")
        time.sleep(0.05)


def test_mosquitto_sub_reads_the_sys_topics_as_they_move(our_broker, procs):
    broker = our_broker("mqtt311", "--sys-interval", "1")
    everything = sys_sub(procs, broker.port, "#")
    sub = sys_sub(procs, broker.port, "$SYS/broker/#")
    # The retained figures arrive at once, named as mosquitto names them.
    wait_figure(sub, "$SYS/broker/version", lambda v: v.startswith("mqtt-sansio-tokio version "))
    wait_figure(sub, "$SYS/broker/uptime", lambda v: v.endswith(" seconds"))
    for topic in (
        "clients/connected", "clients/total", "messages/received", "messages/sent",
        "publish/messages/received", "publish/messages/sent", "publish/messages/dropped",
        "publish/messages/dropped/queue-full", "bytes/received", "bytes/sent",
        "retained messages/count",
    ):
        wait_figure(sub, "$SYS/broker/" + topic, lambda v: v.isdigit())
    received = int(figures(sub)["$SYS/broker/publish/messages/received"])
    for i in range(3):
        mosquitto_pub(procs, broker.port, "data/t", 1, "-m", f"m{i}")
    wait_figure(sub, "$SYS/broker/publish/messages/received", lambda v: int(v) == received + 3)
    wait_figure(sub, "$SYS/broker/clients/connected", lambda v: int(v) == 2)
    # MQTT-4.7.2-1: `#` got the three messages and no figure.
    time.sleep(QUIET)
    got = figures(everything)
    assert set(got) == {"data/t"}, everything.describe()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_broker_logs_a_summary_of_its_counters_when_a_signal_stops_it(our_broker, procs, sig):
    broker = our_broker("mqtt311", "--sys-interval", "0")
    sub = sys_sub(procs, broker.port, "s/#")
    for i in range(2):
        mosquitto_pub(procs, broker.port, "s/t", 1, "-m", f"m{i}")
    sub.wait_lines(2, stream="out", pred=lambda l: l.startswith(SYS))
    broker.proc.send(sig)
    assert broker.proc.wait(WAIT) == 0, broker.proc.describe()
    lines = [l for l in broker.proc.err() if "summary: " in l]
    assert len(lines) == 2, broker.proc.describe()
    assert "sessions: 1 connected, 0 stored" in lines[0], lines
    # Out 2: with --sys-interval 0, no $SYS message went to anyone.
    assert "publish in 2, out 2, dropped 0 " in lines[1], lines
