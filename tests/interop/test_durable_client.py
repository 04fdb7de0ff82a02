"""The durable client (`examples/client --data-dir`): `kill -9` at random moments while
the example client publishes a numbered series at QoS 1 and at QoS 2 to mosquitto, then
a restart on the same directory, several times; a persistent paho-mqtt subscriber stays
online throughout.

Between each client and mosquitto sits a tap (a TCP proxy) that reads every packet the
client sends. At a random moment before the kill the tap may freeze: from then on what
the client sends is on the wire but never reaches mosquitto, as when a device dies with
packets in flight. A message counts as accepted for publishing when the client logged
it as acknowledged (PUBACK; PUBCOMP for QoS 2) or its PUBLISH left the client (the tap
read it): the client stores a message before its PUBLISH is written, so either way it
must reach the subscriber, QoS 1 at least once and QoS 2 exactly once, once the client
has run again on its directory."""

import random
import socket
import threading
import time

import pytest

from conftest import HOST, QUIET, WAIT, mosquitto_with, our_client

SEEDS = range(1, 5)
KILLS = 3


class Tap:
    """A TCP proxy to `port` that records the payload of every PUBLISH a client sends;
    `freeze()` stops passing on what the connections open now send, for good."""

    def __init__(self, port):
        self.upstream = port
        self.lock = threading.Lock()
        self.published = []  # (payload, reached the broker)
        self.conns = []
        self.server = socket.socket()
        self.server.bind((HOST, 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            up = socket.create_connection((HOST, self.upstream))
            conn = {"frozen": False, "socks": (client, up)}
            with self.lock:
                self.conns.append(conn)
            threading.Thread(target=self._back, args=(up, client), daemon=True).start()
            threading.Thread(target=self._forth, args=(conn, client, up), daemon=True).start()

    @staticmethod
    def _back(up, client):
        try:
            while data := up.recv(65536):
                client.sendall(data)
        except OSError:
            pass

    def _forth(self, conn, client, up):
        buf = bytearray()
        try:
            while data := client.recv(65536):
                with self.lock:
                    frozen = conn["frozen"]
                buf += data
                for payload in publishes(buf):
                    with self.lock:
                        self.published.append((payload, not frozen))
                if not frozen:
                    up.sendall(data)
        except OSError:
            pass
        # The client is gone: so is its connection to the broker.
        for s in (client, up):
            try:
                s.close()
            except OSError:
                pass

    def freeze(self):
        with self.lock:
            for c in self.conns:
                c["frozen"] = True

    def payloads(self):
        with self.lock:
            return list(self.published)

    def close(self):
        self.server.close()
        with self.lock:
            for c in self.conns:
                for s in c["socks"]:
                    try:
                        s.close()
                    except OSError:
                        pass


def publishes(buf):
    """Takes the complete packets off the front of `buf`; the payloads of the PUBLISH
    packets among them."""
    out = []
    while len(buf) >= 2:
        length, mult, i = 0, 1, 1
        while True:
            if i >= len(buf):
                return out
            b = buf[i]
            length += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
        if len(buf) < i + length:
            return out
        first, body = buf[0], bytes(buf[i : i + length])
        del buf[: i + length]
        if first >> 4 == 3:
            qos = (first >> 1) & 3
            at = 2 + int.from_bytes(body[:2], "big") + (2 if qos else 0)
            out.append(body[at:].decode())
    return out


def acknowledged(proc, prefix):
    """The payloads the client logged as acknowledged (its `acknowledged N` lines count
    them, in order)."""
    ns = [int(l.split()[1]) for l in proc.err() if l.startswith("acknowledged ")]
    return {prefix + str(n) for n in range(max(ns, default=0))}


@pytest.mark.parametrize("seed", SEEDS)
def test_kill9_of_the_client_loses_no_accepted_message(procs, bins, paho, tmp_path, seed):
    rng = random.Random(seed)
    broker = mosquitto_with(procs, tmp_path, "max_queued_messages 0\n")
    sub = paho(broker.port, client_id=f"watch-{seed}", clean_session=False)
    assert sub.subscribe("durable-client/#", 2) == [2]

    taps = {q: Tap(broker.port) for q in (1, 2)}
    acked = {1: set(), 2: set()}

    def start(q, run, count):
        prefix = f"s{seed}q{q}r{run}-"
        p = procs.start(
            our_client(bins, "pub", taps[q].port, f"durable-client/q{q}", q, "--message", prefix + "{n}",
                       "--count", count, "--client-id", f"dc-{seed}-q{q}", "--clean-session", "false",
                       "--data-dir", tmp_path / f"q{q}", "--max-inflight", "10"),
            name=f"client-q{q}",
        )
        return p, prefix

    try:
        for run in range(KILLS):
            clients = {q: start(q, run, 1_000_000) for q in (1, 2)}
            time.sleep(rng.uniform(0.3, 1.0))
            for q, (p, prefix) in clients.items():
                if rng.random() < 0.7:
                    taps[q].freeze()
                    time.sleep(rng.uniform(0.0, 0.15))
                p.kill9()
                assert "panicked" not in "\n".join(p.err()), p.describe()
                acked[q] |= acknowledged(p, prefix)
        # The last run finishes: what the store held is resent before its own messages,
        # so once they are acknowledged everything is.
        for q in (1, 2):
            p, prefix = start(q, "end", 5)
            assert p.wait(WAIT * 3) == 0, p.describe()
            assert "connected session_present=true" in p.err(), p.describe()
            acked[q] |= acknowledged(p, prefix)
    finally:
        for t in taps.values():
            t.close()

    accepted, stuck = {}, 0
    for q in (1, 2):
        wire = taps[q].payloads()
        left = {payload for payload, _ in wire}
        assert acked[q] <= left, f"acknowledged but never sent: {sorted(acked[q] - left)[:5]}"
        accepted[q] = acked[q] | left
        stuck += sum(1 for _, passed in wire if not passed)

    want = accepted[1] | accepted[2]
    got = []
    deadline = time.monotonic() + WAIT * 2
    while not want <= set(got) and time.monotonic() < deadline:
        m = sub.get(0.2)
        if m is not None:
            got.append(m.payload.decode())
    while (m := sub.get(QUIET)) is not None:
        got.append(m.payload.decode())
    missing = want - set(got)
    assert not missing, f"lost {len(missing)} of {len(want)} accepted: {sorted(missing)[:8]}"
    q2 = [g for g in got if g in accepted[2]]
    twice = sorted({g for g in q2 if q2.count(g) > 1})
    assert not twice, f"QoS 2 delivered more than once: {twice[:8]}"
    print(f"seed {seed}: {len(accepted[1])} QoS 1 and {len(accepted[2])} QoS 2 accepted "
          f"({stuck} PUBLISH packets stopped on the wire), all delivered")

