"""Raw MQTT 3.1.1 over a socket, for peers that must do what no client library would
(hostile peers, readers that never acknowledge, a health client): encoding a few
packets and reading whole packets back."""

import struct


def mqtt_string(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def remaining_length(n):
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(first, body):
    return bytes([first]) + remaining_length(len(body)) + body


def connect_packet(client_id, clean=True, keepalive=0):
    flags = 0x02 if clean else 0x00
    return packet(0x10, mqtt_string("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive) + mqtt_string(client_id))


def subscribe_packet(pid, filters):
    return packet(0x82, struct.pack("!H", pid) + b"".join(mqtt_string(f) + bytes([q]) for f, q in filters))


def publish_packet(topic, payload, qos=0, pid=1, retain=False):
    first = 0x30 | (qos << 1) | (1 if retain else 0)
    return packet(first, mqtt_string(topic) + (struct.pack("!H", pid) if qos else b"") + payload)


def read_packet(sock):
    """(first byte, body) of the next packet; ConnectionError when the peer closed."""
    first = read_exact(sock, 1)[0]
    n, shift = 0, 0
    while True:
        b = read_exact(sock, 1)[0]
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return first, read_exact(sock, n)


def read_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed by the broker")
        buf += chunk
    return bytes(buf)
