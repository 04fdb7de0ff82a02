#!/usr/bin/env python3
"""What mosquitto loses in the kill -9 test our durable broker passes
(`tests/interop/test_durable.py`), run with the same harness against mosquitto with
`persistence true` and its default `autosave_interval` (1800 s).

Per seed: an offline and an online persistent subscriber (clean session 0, QoS 2), a
retained message, then paho-mqtt publishers at QoS 1 and QoS 2 until `kill -9` at a
random moment (0.3-2 s, as the test), mosquitto restarted on the same configuration
and port. Counts, per subscriber, the messages a publisher saw acknowledged that never
arrive, QoS 2 messages delivered twice, whether the sessions came back (session
present), whether a subscription and the retained message survived.

    python3 benches/mosquitto-kill9.py [SEEDS]     (default 20; needs mosquitto, paho-mqtt)

Prints one line per seed and a total. Exit status 0 whatever mosquitto loses (this
measures, it does not judge); 1 when the harness itself fails. Everything it starts is
stopped by PID; its directories are removed.
"""

import pathlib
import random
import shutil
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "interop"))

from conftest import QUIET, Paho, Procs, free_port, mosquitto_with  # noqa: E402
from test_durable import TOPIC, Publisher, drain, reconnect  # noqa: E402


def one(seed):
    rng = random.Random(seed)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="mosquitto-kill9-"))
    # mosquitto drops root for its own user, which must read and write here.
    tmp.chmod(0o777)
    (tmp / "db").mkdir(mode=0o777)
    (tmp / "db").chmod(0o777)
    port = free_port()
    conf = (
        f"persistence true\npersistence_location {tmp}/db/\n"
        "max_inflight_messages 20\nmax_queued_messages 100000\n"
    )
    procs, clients = Procs(), []

    def paho(**kw):
        c = Paho(port, **kw)
        clients.append(c)
        return c

    try:
        broker = mosquitto_with(procs, tmp, conf, port=port)
        offline = paho(client_id="offline", clean_session=False)
        assert offline.subscribe(TOPIC, 2) == [2]
        assert offline.subscribe("durable/kept", 1) == [1]
        offline.disconnect()
        online = paho(client_id="online", clean_session=False)
        assert online.subscribe(TOPIC, 2) == [2]
        setter = paho(client_id="setter")
        assert setter.publish("durable/retained", f"kept-{seed}", 1, retain=True)
        setter.disconnect()

        pubs = [Publisher(port, 1, f"q1-{seed}"), Publisher(port, 2, f"q2-{seed}")]
        for p in pubs:
            p.start()
        time.sleep(rng.uniform(0.3, 2.0))
        broker.proc.kill9()
        acked = {p.qos: p.finish() for p in pubs}
        want = acked[1] | acked[2]

        mosquitto_with(procs, tmp, conf, port=port)
        present = {"online": reconnect(online, port)}
        offline = paho(client_id="offline", clean_session=False)
        present["offline"] = offline.session_present
        got = {"online": drain(online), "offline": drain(offline)}
        lost, twice = {}, {}
        for who, msgs in got.items():
            payloads = [m.payload.decode() for m in msgs if m.topic == TOPIC]
            lost[who] = len(want - set(payloads))
            q2 = [p for p in payloads if p.startswith("q2-")]
            twice[who] = len({p for p in q2 if q2.count(p) > 1})
        probe = paho(client_id="probe")
        probe.publish("durable/kept", "after", 1)
        kept = offline.get(QUIET * 2) is not None
        probe.subscribe("durable/retained", 1)
        m = probe.get(QUIET * 2)
        retained = m is not None and m.payload == f"kept-{seed}".encode()
        return {
            "acked": len(want),
            "lost": lost,
            "twice": twice,
            "present": present,
            "subscription": kept,
            "retained": retained,
        }
    finally:
        for c in clients:
            c.close()
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    totals = {"acked": 0, "online": 0, "offline": 0, "twice": 0, "sessions": 0,
              "subscriptions": 0, "retained": 0}
    for seed in range(1, seeds + 1):
        r = one(seed)
        print(f"seed {seed}: {r['acked']} acknowledged; lost online {r['lost']['online']}, "
              f"offline {r['lost']['offline']}; QoS 2 twice {sum(r['twice'].values())}; "
              f"session present {r['present']}; subscription kept {r['subscription']}; "
              f"retained kept {r['retained']}", flush=True)
        totals["acked"] += r["acked"]
        totals["online"] += r["lost"]["online"]
        totals["offline"] += r["lost"]["offline"]
        totals["twice"] += sum(r["twice"].values())
        totals["sessions"] += sum(1 for v in r["present"].values() if not v)
        totals["subscriptions"] += 0 if r["subscription"] else 1
        totals["retained"] += 0 if r["retained"] else 1
    print(f"total over {seeds} kills: {totals['acked']} acknowledged; lost "
          f"{totals['online']} at the online and {totals['offline']} at the offline subscriber; "
          f"{totals['twice']} QoS 2 delivered twice; {totals['sessions']} sessions, "
          f"{totals['subscriptions']} subscriptions, {totals['retained']} retained messages lost")


if __name__ == "__main__":
    main()
