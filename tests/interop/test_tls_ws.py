"""TLS and WebSocket between the crate's tokio examples and other implementations:
our client against mosquitto (TLS with require_certificate, WebSocket), mosquitto_pub /
mosquitto_sub and paho-mqtt against our broker (TLS with client certificates, WS, WSS),
`openssl s_client` negotiating ALPN `x-amzn-mqtt-ca`, and the failures that must be
clear typed errors without a hang (wrong CA, expired certificate, missing client
certificate, host name mismatch, CN not equal to the client id).

Certificates are made by the `pki` fixture with the openssl CLI at run time; no key is
committed.
"""

import os
import shutil
import ssl
import subprocess

import pytest

from conftest import HOST, MSG, WAIT, Server, free_port, import_paho, messages, need, wait_for_port

OPENSSL = shutil.which("openssl")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def issue(d, name, cn, ca, ext, days="2"):
    """A P-256 key and a certificate for `cn` signed by `ca`, with extensions `ext`."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
    (d / f"{name}.ext").write_text(ext)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", days, "-extfile", f"{name}.ext", cwd=d)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """ca.pem; server (localhost, 127.0.0.1); other (a server certificate for
    other.example); expired (the server's names, expired); device-1 and device-2 (client
    certificates with those CNs); rogue-ca and rogue (a CA nobody trusts, a server
    certificate from it)."""
    need("openssl", OPENSSL)
    d = tmp_path_factory.mktemp("pki")
    for ca, cn in (("ca", "interop CA"), ("rogue-ca", "rogue CA")):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2", "-subj", f"/CN={cn}", cwd=d)
    server = "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    client = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
    issue(d, "server", "localhost", "ca", server)
    issue(d, "other", "other.example", "ca", server.replace("DNS:localhost,IP:127.0.0.1", "DNS:other.example"))
    # Valid from now for -1 days: its notAfter is already past.
    issue(d, "expired", "localhost", "ca", server, days="-1")
    issue(d, "rogue", "localhost", "rogue-ca", server)
    issue(d, "device-1", "device-1", "ca", client)
    issue(d, "device-2", "device-2", "ca", client)
    return d


def start_tls_broker(bins, procs, pki, *extra, cert="server"):
    """Our broker with a TLS listener requiring client certificates from the CA, and WS
    and WSS listeners; returns (tls_port, ws_port, wss_port, proc)."""
    p = procs.start(
        [bins["broker"], "--listen", f"{HOST}:0", "--profile", "mqtt311",
         "--tls-listen", f"{HOST}:0", "--ws-listen", f"{HOST}:0", "--wss-listen", f"{HOST}:0",
         "--tls-cert", pki / f"{cert}.pem", "--tls-key", pki / f"{cert}.key",
         "--tls-client-ca", pki / "ca.pem", *extra],
        name="broker",
    )
    ports = {}
    for kind in ("tls", "ws", "wss"):
        line = p.wait_line(lambda l, k=kind: l.startswith(f"{k} listening on "), stream="out")
        ports[kind] = int(line.rsplit(":", 1)[1])
    return ports["tls"], ports["ws"], ports["wss"], p


def client_tls(pki, device="device-1", ca="ca"):
    return ["--cafile", pki / f"{ca}.pem", "--cert", pki / f"{device}.pem", "--key", pki / f"{device}.key"]


def our(bins, mode, topic, qos, *extra):
    return [bins["client"], mode, "--topic", topic, "--qos", qos, *extra]


@pytest.fixture
def mosquitto_tls(procs, tmp_path, pki):
    """mosquitto with a TLS listener that requires a client certificate from the CA."""
    need("mosquitto", shutil.which("mosquitto"))
    port = free_port()
    conf = tmp_path / "mosquitto-tls.conf"
    conf.write_text(
        f"listener {port} {HOST}\nallow_anonymous true\npersistence false\nlog_dest stderr\n"
        f"cafile {pki / 'ca.pem'}\ncertfile {pki / 'server.pem'}\nkeyfile {pki / 'server.key'}\n"
        "require_certificate true\n"
        # As root, mosquitto switches to its own user, which cannot read the test's
        # private temporary directory: keep root instead.
        + ("user root\n" if os.geteuid() == 0 else "")
    )
    p = procs.start(["mosquitto", "-c", conf], name="mosquitto-tls")
    wait_for_port(port)
    return Server(p, port)


@pytest.fixture
def mosquitto_ws(procs, tmp_path):
    """mosquitto with a plain listener on 127.0.0.1 and a WebSocket listener. mosquitto
    2.0.11 cannot bind a WebSocket listener to an address (its issue #3045) nor start
    with only one (#2284), so the WebSocket port listens on every interface."""
    need("mosquitto", shutil.which("mosquitto"))
    port, ws = free_port(), free_port()
    conf = tmp_path / "mosquitto-ws.conf"
    conf.write_text(
        f"listener {port} {HOST}\nlistener {ws}\nprotocol websockets\nallow_anonymous true\n"
        "persistence false\nlog_dest stderr\n"
    )
    p = procs.start(["mosquitto", "-c", conf], name="mosquitto-ws")
    wait_for_port(port)
    wait_for_port(ws)
    return Server(p, port), ws


def test_our_client_reaches_mosquitto_over_tls_with_a_client_certificate(procs, bins, pki, mosquitto_tls):
    port = mosquitto_tls.port
    url = ["--url", f"mqtts://localhost:{port}"]
    sub = procs.start(our(bins, "sub", "tls/#", 1, *url, *client_tls(pki), "--count", 2), name="our-sub")
    sub.wait_line(lambda l: l.startswith("subscribed"))
    procs.run(our(bins, "pub", "tls/t", 1, "--host", "localhost", "--port", port, *client_tls(pki, "device-2"),
                  "--message", "m{n}", "--count", 2))
    assert sub.wait(WAIT) == 0, sub.describe()
    assert sub.out() == ["m0", "m1"]


def test_our_client_without_a_certificate_gets_a_tls_error_from_mosquitto(procs, bins, pki, mosquitto_tls):
    p = procs.run(our(bins, "pub", "tls/t", 1, "--url", f"mqtts://localhost:{mosquitto_tls.port}",
                      "--cafile", pki / "ca.pem", "--message", "x"), check=False)
    assert p.popen.returncode == 1, p.describe()
    assert any(l.startswith("client: ") and ("TLS" in l or "network" in l) for l in p.err()), p.describe()


def test_our_client_reaches_mosquitto_over_websocket(procs, bins, mosquitto_ws):
    plain, ws = mosquitto_ws
    sub = procs.start(our(bins, "sub", "ws/#", 2, "--url", f"ws://{HOST}:{ws}/mqtt", "--count", 3), name="our-sub")
    sub.wait_line(lambda l: l.startswith("subscribed"))
    procs.run(our(bins, "pub", "ws/t", 2, "--url", f"ws://{HOST}:{ws}", "--message", "w{n}", "--count", 3))
    assert sub.wait(WAIT) == 0, sub.describe()
    assert sub.out() == ["w0", "w1", "w2"]


def mosquitto_tls_args(pki, port, device):
    return ["-V", "mqttv311", "-h", "localhost", "-p", port, "--cafile", pki / "ca.pem",
            "--cert", pki / f"{device}.pem", "--key", pki / f"{device}.key", "-i", device]


def test_mosquitto_clients_reach_our_broker_over_tls_with_client_certificates(procs, bins, pki):
    need("mosquitto_sub", shutil.which("mosquitto_sub"))
    tls, _, _, broker = start_tls_broker(bins, procs, pki, "--require-cn-client-id")
    sub = procs.start(["stdbuf", "-oL", "mosquitto_sub", *mosquitto_tls_args(pki, tls, "device-1"),
                       "-t", "tls/#", "-q", "1", "-d", "-F", MSG + "%q %r %p"], name="mosquitto_sub")
    sub.wait_line(lambda l: l.startswith("Subscribed (mid"), stream="out")
    procs.run(["mosquitto_pub", *mosquitto_tls_args(pki, tls, "device-2"), "-t", "tls/a", "-q", "1", "-m", "hello"])
    assert messages(sub, 1) == [(1, 0, "hello")]
    broker.wait_line(lambda l: "over tls" in l)


def test_a_client_id_other_than_the_cn_is_not_authorized(procs, bins, pki):
    tls, _, _, _ = start_tls_broker(bins, procs, pki, "--require-cn-client-id")
    args = mosquitto_tls_args(pki, tls, "device-1")
    args[args.index("-i") + 1] = "someone-else"
    p = procs.run(["mosquitto_pub", *args, "-t", "t", "-m", "x"], check=False)
    assert p.popen.returncode != 0
    assert any("not authori" in l.lower() for l in p.err()), p.describe()
    ours = procs.run(our(bins, "pub", "t", 1, "--host", "localhost", "--port", tls, *client_tls(pki),
                         "--client-id", "someone-else", "--message", "x"), check=False)
    assert ours.popen.returncode == 1
    assert any("not authorized" in l for l in ours.err()), ours.describe()


def test_mosquitto_pub_without_a_client_certificate_fails_the_handshake(procs, bins, pki):
    tls, _, _, broker = start_tls_broker(bins, procs, pki)
    p = procs.run(["mosquitto_pub", "-V", "mqttv311", "-h", "localhost", "-p", tls, "--cafile", pki / "ca.pem",
                   "-t", "t", "-m", "x"], check=False)
    assert p.popen.returncode != 0, p.describe()
    broker.wait_line(lambda l: "tls handshake with" in l and "failed" in l)


@pytest.mark.parametrize("failure, args, expected", [
    ("wrong CA", ["--cafile", "rogue-ca.pem"], "UnknownIssuer"),
    ("host name mismatch", ["--host", "127.0.0.1"], "not valid for name"),
])
def test_our_client_fails_clearly_on_a_bad_server_certificate(procs, bins, pki, failure, args, expected):
    # The broker presents a certificate for other.example in the host name case.
    cert = "other" if failure == "host name mismatch" else "server"
    tls, _, _, _ = start_tls_broker(bins, procs, pki, cert=cert)
    base = {"--cafile": pki / "ca.pem", "--host": "localhost"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = pki / value if value.endswith(".pem") else value
    cmd = our(bins, "pub", "t", 1, "--port", tls, "--cert", pki / "device-1.pem", "--key", pki / "device-1.key",
              "--message", "x", *[x for kv in base.items() for x in kv])
    p = procs.run(cmd, check=False)
    assert p.popen.returncode == 1, p.describe()
    assert any(l.startswith("client: TLS") and expected in l for l in p.err()), p.describe()


def test_our_client_fails_clearly_on_an_expired_server_certificate(procs, bins, pki):
    tls, _, _, _ = start_tls_broker(bins, procs, pki, cert="expired")
    p = procs.run(our(bins, "pub", "t", 1, "--host", "localhost", "--port", tls, *client_tls(pki), "--message", "x"),
                  check=False)
    assert p.popen.returncode == 1, p.describe()
    assert any(l.startswith("client: TLS") and "Expired" in l for l in p.err()), p.describe()


def test_our_client_without_a_certificate_is_refused_by_our_broker(procs, bins, pki):
    tls, _, _, _ = start_tls_broker(bins, procs, pki)
    p = procs.run(our(bins, "pub", "t", 1, "--host", "localhost", "--port", tls, "--cafile", pki / "ca.pem",
                      "--message", "x"), check=False)
    assert p.popen.returncode == 1, p.describe()
    assert any(l.startswith("client: TLS") and "CertificateRequired" in l for l in p.err()), p.describe()


def test_openssl_s_client_negotiates_alpn_x_amzn_mqtt_ca(procs, bins, pki):
    tls, _, _, _ = start_tls_broker(bins, procs, pki)
    for proto in ("x-amzn-mqtt-ca", "mqtt"):
        out = subprocess.run(
            ["openssl", "s_client", "-connect", f"{HOST}:{tls}", "-servername", "localhost",
             "-alpn", proto, "-CAfile", pki / "ca.pem", "-cert", pki / "device-1.pem", "-key", pki / "device-1.key"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=WAIT,
        )
        assert f"ALPN protocol: {proto}" in out.stdout, out.stdout + out.stderr
        assert "Verify return code: 0 (ok)" in out.stdout, out.stdout


def paho_ws(port, pki=None, client_id="paho-ws"):
    mqtt = import_paho()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311,
                    transport="websockets", reconnect_on_failure=False)
    c.ws_set_options(path="/mqtt")
    if pki is not None:
        c.tls_set(ca_certs=str(pki / "ca.pem"), certfile=str(pki / "device-1.pem"),
                  keyfile=str(pki / "device-1.key"), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    return c


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
def test_paho_publishes_and_receives_through_our_broker_over_websocket(procs, bins, pki, secure):
    import queue
    _, ws, wss, broker = start_tls_broker(bins, procs, pki)
    port = wss if secure else ws
    c = paho_ws(port, pki if secure else None, client_id="device-1")
    got, connected, subscribed = queue.Queue(), queue.Queue(), queue.Queue()
    c.on_connect = lambda cl, u, f, rc, p: connected.put(rc)
    c.on_subscribe = lambda cl, u, mid, rcs, p: subscribed.put(rcs)
    c.on_message = lambda cl, u, m: got.put(m)
    c.connect("localhost", port, keepalive=30)
    c.loop_start()
    try:
        assert not connected.get(timeout=WAIT).is_failure
        c.subscribe("paho/ws", 1)
        subscribed.get(timeout=WAIT)
        # Larger than one WebSocket frame paho writes, so the packet spans frames.
        payload = b"p" * 200_000
        info = c.publish("paho/ws", payload, 1)
        info.wait_for_publish(WAIT)
        m = got.get(timeout=WAIT)
        assert m.payload == payload
        kind = "wss" if secure else "ws"
        broker.wait_line(lambda l: f"over {kind}" in l)
    finally:
        c.disconnect()
        c.loop_stop()
