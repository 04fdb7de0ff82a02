#!/usr/bin/env python3
"""Generates the MQTT 3.1.1 packet vectors in spec-vectors/packets/.

Standard library only. The expected outcomes are written here from the specification
(OASIS MQTT Version 3.1.1 Plus Errata 01), not recorded from an implementation: valid
packets are built field by field by the small encoder below, and every invalid input
names the error the specification makes of it.

    python3 spec-vectors/gen/packets.py           # rewrite the JSON files
    python3 spec-vectors/gen/packets.py --check   # fail if the files are not up to date

The format is described in spec-vectors/SCHEMA.md.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(HERE), "packets")

# ---------------------------------------------------------------------------------------
# Error kinds and the rule each one reports (SCHEMA.md, "Error kinds").

RULE = {
    "reserved_packet_type": "§2.2.1",
    "publish_qos3": "MQTT-3.3.1-4",
    "publish_dup_with_qos0": "MQTT-3.3.1-2",
    "malformed_remaining_length": "§2.2.3",
    "packet_too_large": "§2.2.3",
    "connect_too_large": "§3.1",
    "invalid_remaining_length": "§2.2.3",
    "unexpected_end": "§2.2.3",
    "trailing_bytes": "§2.2.3",
    "invalid_protocol_name": "MQTT-3.1.2-1",
    "unsupported_protocol_level": "MQTT-3.1.2-2",
    "connect_reserved_flag": "MQTT-3.1.2-3",
    "will_qos3": "MQTT-3.1.2-14",
    "will_qos_without_will": "MQTT-3.1.2-13",
    "will_retain_without_will": "MQTT-3.1.2-15",
    "password_without_username": "MQTT-3.1.2-22",
    "missing_client_id": "MQTT-3.1.3-3",
    "missing_will": "MQTT-3.1.2-9",
    "missing_username": "MQTT-3.1.2-19",
    "missing_password": "MQTT-3.1.2-21",
    "invalid_utf8": "MQTT-1.5.3-1",
    "null_character": "MQTT-1.5.3-2",
    "empty_topic": "MQTT-4.7.3-1",
    "wildcard_in_topic_name": "MQTT-3.3.2-2",
    "invalid_multi_level_wildcard": "MQTT-4.7.1-2",
    "invalid_single_level_wildcard": "MQTT-4.7.1-3",
    "zero_packet_id": "MQTT-2.3.1-1",
    "connack_reserved_flags": "§3.2.2.1",
    "session_present_with_refusal": "MQTT-3.2.2-4",
    "invalid_connect_return_code": "§3.2.2.3",
    "empty_subscribe": "MQTT-3.8.3-3",
    "invalid_subscribe_qos": "MQTT-3.8.3-4",
    "empty_suback": "§3.9.3",
    "invalid_suback_code": "MQTT-3.9.3-2",
    "empty_unsubscribe": "MQTT-3.10.3-2",
}

# The fixed-header flag nibble each packet type requires (Table 2.2); PUBLISH is None.
TYPES = {
    1: ("CONNECT", 0), 2: ("CONNACK", 0), 3: ("PUBLISH", None), 4: ("PUBACK", 0),
    5: ("PUBREC", 0), 6: ("PUBREL", 2), 7: ("PUBCOMP", 0), 8: ("SUBSCRIBE", 2),
    9: ("SUBACK", 0), 10: ("UNSUBSCRIBE", 2), 11: ("UNSUBACK", 0), 12: ("PINGREQ", 0),
    13: ("PINGRESP", 0), 14: ("DISCONNECT", 0),
}
# The rule that names the flag nibble of a type, where the specification has one.
FLAG_RULE = {6: "MQTT-3.6.1-1", 8: "MQTT-3.8.1-1", 10: "MQTT-3.10.1-1", 14: "MQTT-3.14.1-1"}
# The section that fixes the Remaining Length of each fixed-size type.
FIXED_RL = {2: (2, "§3.2.1"), 4: (2, "§3.4.1"), 5: (2, "§3.5.1"), 6: (2, "§3.6.1"),
            7: (2, "§3.7.1"), 11: (2, "§3.11.1"), 12: (0, "§3.12.1"), 13: (0, "§3.13.1"),
            14: (0, "§3.14.1")}


def err(kind):
    return {"error": {"kind": kind, "rule": RULE[kind]}}


# ---------------------------------------------------------------------------------------
# Byte strings that may contain long repeated runs, kept compact in the JSON.

class Rep:
    """`unit` (bytes or str) repeated `count` times."""

    def __init__(self, unit, count):
        self.unit = unit
        self.count = count


def blen(v):
    if isinstance(v, Rep):
        return blen(v.unit) * v.count
    if isinstance(v, str):
        return len(v.encode("utf-8"))
    return len(v)


class Buf:
    """A byte string made of literal parts and repeated runs."""

    def __init__(self, *parts):
        self.parts = []
        for p in parts:
            self.add(p)

    def add(self, p):
        if isinstance(p, Buf):
            for q in p.parts:
                self.add(q)
        elif isinstance(p, Rep):
            unit = p.unit.encode("utf-8") if isinstance(p.unit, str) else p.unit
            self.parts.append(Rep(unit, p.count))
        else:
            b = p.encode("utf-8") if isinstance(p, str) else bytes(p)
            if self.parts and isinstance(self.parts[-1], bytes):
                self.parts[-1] += b
            else:
                self.parts.append(b)
        return self

    def __len__(self):
        return sum(blen(p) for p in self.parts)

    def json(self):
        out = []
        for p in self.parts:
            if isinstance(p, Rep):
                out.append({"repeat": p.unit.hex(), "count": p.count})
            elif p:
                out.append(p.hex())
        if len(out) == 1 and isinstance(out[0], str):
            return out[0]
        if not out:
            return ""
        return out

    def prefix(self, n):
        """The first n bytes, as literal bytes (only for short prefixes)."""
        b = b""
        for p in self.parts:
            b += p.unit * p.count if isinstance(p, Rep) else p
            if len(b) >= n:
                break
        return Buf(b[:n])


def text_json(v):
    if isinstance(v, Rep):
        return {"repeat": v.unit, "count": v.count}
    return v


def hex_json(v):
    if isinstance(v, Rep):
        return {"repeat": v.unit.hex(), "count": v.count}
    return bytes(v).hex()


def rl(n):
    """The minimal Remaining Length encoding of n (§2.2.3)."""
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            b |= 0x80
        out.append(b)
        if not n:
            return bytes(out)


def u16(n):
    return bytes([n >> 8, n & 0xFF])


def s(v):
    """A field with its two-byte length prefix (§1.5.3)."""
    return Buf(u16(blen(v)), v)


def frame(first, body):
    body = Buf(body)
    return Buf(bytes([first]), rl(len(body)), body)


# ---------------------------------------------------------------------------------------
# The packets: wire bytes and canonical JSON side by side.

MQTT = s("MQTT")


def connect(client_id="c", clean=True, keep_alive=60, will=None, username=None,
            password=None):
    """A CONNECT; `will` is (topic, message, qos, retain)."""
    flags = 0x02 if clean else 0
    payload = Buf(s(client_id))
    if will is not None:
        topic, message, qos, retain = will
        flags |= 0x04 | qos << 3 | (0x20 if retain else 0)
        payload.add(s(topic)).add(s(message))
    if username is not None:
        flags |= 0x80
        payload.add(s(username))
        if password is not None:
            flags |= 0x40
            payload.add(s(password))
    body = Buf(MQTT, b"\x04", bytes([flags]), u16(keep_alive), payload)
    j = {
        "type": "CONNECT",
        "client_id": text_json(client_id),
        "clean_session": clean,
        "keep_alive": keep_alive,
        "will": None if will is None else {
            "topic": text_json(will[0]), "message_hex": hex_json(will[1]),
            "qos": will[2], "retain": will[3]},
        "username": None if username is None else text_json(username),
        "password_hex": None if password is None else hex_json(password),
    }
    return frame(0x10, body), j


def connack(session_present, code):
    return (frame(0x20, bytes([1 if session_present else 0, code])),
            {"type": "CONNACK", "session_present": session_present, "return_code": code})


def publish(topic="a/b", payload=b"hi", qos=0, packet_id=None, dup=False, retain=False):
    if qos and packet_id is None:
        packet_id = 1
    first = 0x30 | (8 if dup else 0) | qos << 1 | (1 if retain else 0)
    body = Buf(s(topic))
    if qos:
        body.add(u16(packet_id))
    body.add(payload)
    return frame(first, body), {
        "type": "PUBLISH", "dup": dup, "qos": qos, "retain": retain,
        "topic": text_json(topic), "packet_id": packet_id if qos else None,
        "payload_hex": hex_json(payload)}


def id_only(t, packet_id=1):
    name, flags = TYPES[t]
    return frame(t << 4 | flags, u16(packet_id)), {"type": name, "packet_id": packet_id}


def subscribe(packet_id, filters):
    body = Buf(u16(packet_id))
    for f, q in filters:
        body.add(s(f)).add(bytes([q]))
    return frame(0x82, body), {
        "type": "SUBSCRIBE", "packet_id": packet_id,
        "filters": [{"filter": f, "qos": q} for f, q in filters]}


def suback(packet_id, codes):
    return (frame(0x90, Buf(u16(packet_id), bytes(codes))),
            {"type": "SUBACK", "packet_id": packet_id, "return_codes": list(codes)})


def unsubscribe(packet_id, filters):
    body = Buf(u16(packet_id))
    for f in filters:
        body.add(s(f))
    return frame(0xA2, body), {"type": "UNSUBSCRIBE", "packet_id": packet_id,
                               "filters": list(filters)}


def bare(t):
    name, flags = TYPES[t]
    return frame(t << 4 | flags, b""), {"type": name}


def packet_bytes(buf):
    """The literal bytes of a short Buf."""
    return buf.prefix(len(buf)).parts[0] if len(buf) else b""


def after_first_byte(t):
    """Everything after the first byte of a small valid packet of type t (for a reserved
    type: a Remaining Length of 0)."""
    table = {1: connect()[0], 2: connack(False, 0)[0], 3: publish(qos=1)[0],
             8: subscribe(1, [("a", 0)])[0], 9: suback(1, [0])[0],
             10: unsubscribe(1, ["a"])[0]}
    for i in (4, 5, 6, 7, 11):
        table[i] = id_only(i)[0]
    for i in (12, 13, 14):
        table[i] = bare(i)[0]
    if t not in table:
        return b"\x00"
    return packet_bytes(table[t])[1:]


# ---------------------------------------------------------------------------------------
# Vector files.

FILES = {}


def vec(file, vid, rules, description, data, expect, encodes_to=None, max_packet_size=None):
    v = {"id": f"{file}/{vid}", "rules": rules, "description": description}
    v["hex"] = data.json() if isinstance(data, Buf) else data
    v["expect"] = expect
    if encodes_to is not None:
        v["encodes_to"] = encodes_to.json() if isinstance(encodes_to, Buf) else encodes_to
    if max_packet_size is not None:
        v["max_packet_size"] = max_packet_size
    FILES.setdefault(file, []).append(v)


def ok(file, vid, rules, description, pkt, **kw):
    data, j = pkt
    vec(file, vid, rules, description, data, {"packet": j}, **kw)


def bad(file, vid, rules, description, data, kind, rule=None, **kw):
    rule = rule or RULE[kind]
    rules = list(rules)
    if rule not in rules:
        rules.append(rule)
    vec(file, vid, rules, description, data if isinstance(data, Buf) else Buf(data),
        {"error": {"kind": kind, "rule": rule}}, **kw)


def needed(prefix_len, header_len, total):
    """How many more bytes this crate's decoder asks for (SCHEMA.md, "incomplete")."""
    if prefix_len == 0:
        return 2
    if prefix_len < header_len:
        return 1
    return total - prefix_len


def header_len(data):
    raw = data.prefix(5).parts[0] if len(data) else b""
    for i in range(1, min(len(raw), 5)):
        if raw[i] & 0x80 == 0:
            return i + 1
    return None


def short(file, vid, rules, description, pkt, cut):
    """The first `cut` bytes of a packet: incomplete."""
    data = pkt[0] if isinstance(pkt, tuple) else pkt
    hl = header_len(data) or 6
    n = needed(cut, hl, len(data))
    vec(file, vid, rules + ["MQTT-6.0.0-2"], description, data.prefix(cut),
        {"incomplete": {"needed": n}})


def raw(h):
    return Buf(bytes.fromhex(h))


# ----- fixed header -------------------------------------------------------------------

F = "fixed_header"

for b in range(256):
    t, flags = b >> 4, b & 0x0F
    data = Buf(bytes([b]), after_first_byte(t))
    if t not in TYPES:
        bad(F, f"reserved-type-0x{b:02x}", [], f"first byte 0x{b:02x}: packet type {t} is "
            "reserved", data, "reserved_packet_type")
        continue
    name, fixed = TYPES[t]
    if fixed is None:
        qos = (flags >> 1) & 3
        if qos == 3:
            bad(F, f"first-byte-0x{b:02x}", ["MQTT-2.2.2-2"], f"PUBLISH first byte 0x{b:02x} has "
                "both QoS bits set", data, "publish_qos3")
        elif qos == 0 and flags & 8:
            bad(F, f"first-byte-0x{b:02x}", ["MQTT-2.2.2-2"], f"PUBLISH first byte 0x{b:02x}: "
                "DUP set at QoS 0", Buf(bytes([b]), packet_bytes(publish()[0])[1:]),
                "publish_dup_with_qos0")
        continue
    if flags != fixed:
        rules = ["MQTT-2.2.2-1", "MQTT-2.2.2-2"]
        if t in FLAG_RULE:
            rules.append(FLAG_RULE[t])
        bad(F, f"first-byte-0x{b:02x}", rules, f"{name} with flag nibble {flags:04b} instead "
            f"of {fixed:04b}", data, "invalid_flags", rule=FLAG_RULE.get(t, "MQTT-2.2.2-1"))

# Remaining Length at every boundary of its encoded size, through PUBLISH QoS 0 with topic "a".
for n in [0, 1, 127, 128, 16383, 16384, 2097151, 2097152]:
    if n < 3:
        continue
    size = n - 3
    payload = Rep(b"\xab", size) if size > 64 else bytes([0xAB]) * size
    ok(F, f"remaining-length-{n}", ["§2.2.3", "MQTT-2.3.1-5"],
       f"PUBLISH with Remaining Length {n} ({len(rl(n))}-byte encoding)",
       publish(topic="a", payload=payload))
ok(F, "remaining-length-0", ["§2.2.3"], "PINGREQ: Remaining Length 0", bare(12))

ok(F, "non-minimal-remaining-length-2-bytes", ["§2.2.3"],
   "Remaining Length 0 in two bytes (80 00) is accepted and re-encoded minimally",
   (raw("c08000"), {"type": "PINGREQ"}), encodes_to=raw("c000"))
ok(F, "non-minimal-remaining-length-4-bytes", ["§2.2.3"],
   "Remaining Length 0 in four bytes (80 80 80 00) is accepted",
   (raw("c0808080 00"), {"type": "PINGREQ"}), encodes_to=raw("c000"))
ok(F, "non-minimal-remaining-length-publish", ["§2.2.3"],
   "PUBLISH whose Remaining Length 5 is encoded as 85 00",
   (raw("308500 000161 ffff"), publish("a", b"\xff\xff")[1]), encodes_to=raw("3005000161ffff"))
bad(F, "remaining-length-5-bytes", [], "a fifth Remaining Length byte: the fourth has its "
    "continuation bit set", raw("30ffffffff7f"), "malformed_remaining_length")
bad(F, "remaining-length-5-bytes-zero", [], "Remaining Length 0 spread over five bytes",
    raw("c0808080800000"), "malformed_remaining_length")
bad(F, "remaining-length-5-bytes-pingreq", [], "four continuation bytes after a valid first "
    "byte, nothing else", raw("c080808080"), "malformed_remaining_length")

vec(F, "empty-input", ["MQTT-6.0.0-2"], "no bytes at all", Buf(), {"incomplete": {"needed": 2}})
for h, desc in [("30", "only the first byte"), ("3080", "one Remaining Length byte with its "
                "continuation bit"), ("308080", "two continuation bytes"),
                ("30ffffff", "three continuation bytes: a fourth byte is still allowed")]:
    vec(F, f"inside-remaining-length-{len(h) // 2}", ["MQTT-6.0.0-2", "§2.2.3"],
        f"incomplete fixed header: {desc}", raw(h), {"incomplete": {"needed": 1}})
vec(F, "largest-remaining-length-header", ["MQTT-6.0.0-2", "§2.2.3"],
    "the header of the largest packet (Remaining Length 268 435 455 = ff ff ff 7f)",
    raw("30ffffff7f"), {"incomplete": {"needed": 268435455}})
vec(F, "largest-remaining-length-header-and-topic", ["MQTT-6.0.0-2", "§2.2.3"],
    "the header and topic of the largest packet",
    raw("30ffffff7f 000161"), {"incomplete": {"needed": 268435452}})

small = publish(topic="a", payload=b"xyz")  # 1 + 1 + 6 = 8 bytes
ok(F, "max-packet-size-exact", ["§2.2.3"], "a packet of exactly the configured maximum size",
   small, max_packet_size=8)
bad(F, "max-packet-size-exceeded", [], "a packet one byte over the configured maximum size",
    small[0], "packet_too_large", max_packet_size=7)
bad(F, "max-packet-size-header-only", [], "a header announcing more than the configured "
    "maximum is refused before the body arrives", raw("30ffffff7f"), "packet_too_large",
    max_packet_size=1024)

# ----- CONNECT ------------------------------------------------------------------------

C = "connect"
WILL_TOPIC, WILL_MSG = "w/t", b"\x01\x02"

# Every legal Connect Flags byte (§3.1.2.3): bit 0 is 0, will QoS/retain only with the
# will flag, will QoS < 3, password only with a user name.
for flags in range(256):
    user, pw, wr, wq, wf, cs, res = (flags >> 7 & 1, flags >> 6 & 1, flags >> 5 & 1,
                                      flags >> 3 & 3, flags >> 2 & 1, flags >> 1 & 1, flags & 1)
    violations = []
    if res:
        violations.append("connect_reserved_flag")
    if not wf and wq:
        violations.append("will_qos_without_will")
    if wf and wq == 3:
        violations.append("will_qos3")
    if not wf and wr:
        violations.append("will_retain_without_will")
    if pw and not user:
        violations.append("password_without_username")
    will = (WILL_TOPIC, WILL_MSG, wq, bool(wr)) if wf else None
    username = "u" if user else None
    password = b"p" if pw else None
    if not violations:
        ok(C, f"flags-0x{flags:02x}", (["MQTT-3.1.2-9", "MQTT-3.1.2-14"] if wf else
                                       ["MQTT-3.1.2-11"]) +
           (["MQTT-3.1.2-19"] if user else ["MQTT-3.1.2-18"]) +
           (["MQTT-3.1.2-21", "MQTT-3.1.2-22"] if pw else ["MQTT-3.1.2-20"]) +
           ["MQTT-3.1.2-3", "MQTT-3.1.3-1"],
           f"Connect Flags 0x{flags:02x}: will={wf} qos={wq} retain={wr} user={user} "
           f"password={pw} clean={cs}",
           connect(clean=bool(cs), will=will, username=username, password=password))
        continue
    if len(violations) != 1:
        continue  # more than one rule broken: the specification does not say which is first
    # Build the payload the flags announce, so that only the flags are wrong.
    payload = Buf(s("c"))
    if wf:
        payload.add(s(WILL_TOPIC)).add(s(WILL_MSG))
    if user:
        payload.add(s("u"))
    if pw:
        payload.add(s(b"p"))
    data = frame(0x10, Buf(MQTT, b"\x04", bytes([flags]), u16(60), payload))
    kind = violations[0]
    extra = {"will_qos_without_will": ["MQTT-3.1.2-11"],
             "will_retain_without_will": ["MQTT-3.1.2-11"],
             "password_without_username": ["MQTT-3.1.2-20"]}.get(kind, [])
    bad(C, f"flags-0x{flags:02x}", extra, f"Connect Flags 0x{flags:02x} break one rule: {kind}",
        data, kind)

ok(C, "minimal", ["MQTT-3.1.3-3"], "client id only, clean session, keep alive 60", connect())
ok(C, "empty-client-id", ["MQTT-3.1.3-3", "MQTT-3.1.3-4"],
   "zero-length client id is well-formed", connect(client_id=""))
ok(C, "empty-client-id-persistent-session", ["MQTT-3.1.3-3"],
   "zero-length client id with clean session 0 is well-formed (refusing it is the server's "
   "job)", connect(client_id="", clean=False))
ok(C, "keep-alive-0", ["§3.1.2.10"], "keep alive 0 turns the mechanism off",
   connect(keep_alive=0))
ok(C, "keep-alive-max", ["§3.1.2.10"], "keep alive 65 535 seconds", connect(keep_alive=65535))
ok(C, "client-id-multibyte", ["MQTT-3.1.3-4", "MQTT-1.5.3-1"],
   "client id with 2-, 3- and 4-byte UTF-8 characters", connect(client_id="é€\U0001F600"))
ok(C, "client-id-bom-kept", ["MQTT-1.5.3-3", "MQTT-3.1.3-4"],
   "EF BB BF at the start of the client id is U+FEFF and is kept",
   connect(client_id="\ufeffid"))
ok(C, "client-id-longest", ["MQTT-3.1.3-4", "§1.5.3"],
   "client id of 65 535 bytes, the longest a string can be", connect(client_id=Rep("c", 65535)))
ok(C, "will-empty-message", ["MQTT-3.1.2-9", "§3.1.3.3"], "zero-length will message",
   connect(will=("w", b"", 1, False)))
ok(C, "will-topic-multibyte-bom", ["MQTT-3.1.3-10", "MQTT-1.5.3-3"],
   "will topic with U+FEFF and multi-byte characters", connect(will=("\ufeff/é", b"x", 0, False)))
ok(C, "empty-username-and-password", ["MQTT-3.1.2-19", "MQTT-3.1.2-21", "MQTT-3.1.3-11"],
   "zero-length user name and password are present fields",
   connect(username="", password=b""))
ok(C, "username-multibyte-binary-password", ["MQTT-3.1.3-11", "§3.1.3.5"],
   "multi-byte user name; the password is binary, any bytes",
   connect(username="ü\ufeff", password=b"\x00\xff\xfe"))
ok(C, "all-fields", ["MQTT-3.1.3-1", "MQTT-3.1.2-9", "MQTT-3.1.2-19", "MQTT-3.1.2-21"],
   "will, user name and password, in the order the specification fixes",
   connect(client_id="client-1", clean=False, keep_alive=30, will=("status/c1", b"gone", 2, True),
           username="user", password=b"secret"))

# The largest valid CONNECT: a 10-byte variable header (protocol name MQTT with its
# prefix, level, flags, keep alive) and five fields of 65 535 bytes with their prefixes:
# Remaining Length 10 + 5 x (2 + 65 535) = 327 695. Anything longer is refused from the
# fixed header alone, before the decoder waits for the rest.
MAX_CONNECT_RL = 10 + 5 * (2 + 65535)
largest = connect(client_id=Rep("c", 65535), will=(Rep("w", 65535), Rep(b"m", 65535), 1, False),
                  username=Rep("u", 65535), password=Rep(b"p", 65535))
largest_body = Buf(MQTT, b"\x04\xce", u16(60), s(Rep("c", 65535)), s(Rep("w", 65535)),
                   s(Rep(b"m", 65535)), s(Rep("u", 65535)), s(Rep(b"p", 65535)))
assert len(largest_body) == MAX_CONNECT_RL
assert frame(0x10, largest_body).json() == largest[0].json()
ok(C, "largest", ["§3.1", "§1.5.3"], "every field 65 535 bytes long: Remaining Length "
   "327 695, the largest a valid CONNECT can have", largest)
vec(C, "largest-header", ["§3.1", "MQTT-6.0.0-2"], "the fixed header of a CONNECT with "
    "Remaining Length 327 695: a valid CONNECT can be that long, so the decoder waits",
    Buf(b"\x10", rl(MAX_CONNECT_RL)), {"incomplete": {"needed": MAX_CONNECT_RL}})
bad(C, "one-byte-too-large-header", ["§2.2.3"], "the fixed header of a CONNECT with "
    "Remaining Length 327 696, one byte more than any valid CONNECT",
    Buf(b"\x10", rl(MAX_CONNECT_RL + 1)), "connect_too_large")
bad(C, "one-byte-too-large", ["§2.2.3"], "a CONNECT of Remaining Length 327 696: the largest "
    "valid one with a sixth byte after the password; refused for its size",
    frame(0x10, Buf(largest_body, b"\x00")), "connect_too_large")
bad(C, "announces-256-mib", ["§2.2.3"], "the fixed header of a CONNECT announcing Remaining "
    "Length 268 435 455 (ff ff ff 7f), the largest there is", raw("10ffffff7f"),
    "connect_too_large")
bad(C, "too-large-under-a-larger-limit", ["§2.2.3"], "a CONNECT header announcing Remaining "
    "Length 1 000 000 with a packet size limit of 2 MB: the CONNECT bound applies whatever "
    "the limit", Buf(b"\x10", rl(1000000)), "connect_too_large", max_packet_size=2000000)

def connect_body(name=MQTT, level=4, flags=0x02, keep_alive=u16(60), payload=None):
    return Buf(name, bytes([level]), bytes([flags]), keep_alive,
               s("c") if payload is None else payload)

bad(C, "protocol-name-mqisdp", ["§3.1.2.1"], "MQTT 3.1's protocol name MQIsdp with level 3",
    frame(0x10, connect_body(name=s("MQIsdp"), level=3)), "invalid_protocol_name")
bad(C, "protocol-name-lowercase", ["§3.1.2.1"], "protocol name mqtt in lower case",
    frame(0x10, connect_body(name=s("mqtt"))), "invalid_protocol_name")
bad(C, "protocol-name-empty", ["§3.1.2.1"], "empty protocol name",
    frame(0x10, connect_body(name=s(""))), "invalid_protocol_name")
bad(C, "protocol-level-3", [], "protocol name MQTT with level 3",
    frame(0x10, connect_body(level=3)), "unsupported_protocol_level")
bad(C, "protocol-level-5", [], "protocol name MQTT with level 5 (MQTT 5.0)",
    frame(0x10, connect_body(level=5)), "unsupported_protocol_level")
bad(C, "empty-body", ["§3.1.2"], "Remaining Length 0: no variable header",
    raw("1000"), "unexpected_end")
bad(C, "protocol-name-overruns", ["§3.1.2.1"], "the protocol name runs past the packet",
    raw("1004 0004 4d51"), "unexpected_end")
bad(C, "no-protocol-level", ["§3.1.2.2"], "the packet ends after the protocol name",
    frame(0x10, MQTT), "unexpected_end")
bad(C, "no-flags", ["§3.1.2.3"], "the packet ends after the protocol level",
    frame(0x10, Buf(MQTT, b"\x04")), "unexpected_end")
bad(C, "keep-alive-truncated", ["§3.1.2.10"], "one byte of keep alive",
    frame(0x10, Buf(MQTT, b"\x04\x02\x00")), "unexpected_end")
bad(C, "no-client-id", [], "the packet ends after keep alive",
    frame(0x10, Buf(MQTT, b"\x04\x02", u16(60))), "missing_client_id")
bad(C, "client-id-overruns", ["MQTT-3.1.3-3"], "client id length 5 with one byte left",
    frame(0x10, connect_body(payload=Buf(u16(5), b"c"))), "unexpected_end")
bad(C, "client-id-half-length", ["MQTT-3.1.3-3"], "one byte of the client id length",
    frame(0x10, connect_body(payload=Buf(b"\x00"))), "unexpected_end")
bad(C, "no-will", ["MQTT-3.1.3-1"], "will flag set, the packet ends after the client id",
    frame(0x10, connect_body(flags=0x06)), "missing_will")
bad(C, "no-will-message", ["MQTT-3.1.3-1"], "will flag set, will topic present, no message",
    frame(0x10, connect_body(flags=0x06, payload=Buf(s("c"), s("w")))), "missing_will")
bad(C, "will-message-overruns", ["MQTT-3.1.2-9"], "the will message runs past the packet",
    frame(0x10, connect_body(flags=0x06, payload=Buf(s("c"), s("w"), u16(3), b"x"))),
    "unexpected_end")
bad(C, "no-username", [], "user name flag set, the packet ends after the client id",
    frame(0x10, connect_body(flags=0x82)), "missing_username")
bad(C, "no-password", [], "password flag set, the packet ends after the user name",
    frame(0x10, connect_body(flags=0xC2, payload=Buf(s("c"), s("u")))), "missing_password")
bad(C, "password-overruns", ["MQTT-3.1.2-21"], "the password runs past the packet",
    frame(0x10, connect_body(flags=0xC2, payload=Buf(s("c"), s("u"), u16(9), b"pw"))),
    "unexpected_end")
bad(C, "will-fields-without-will-flag", ["MQTT-3.1.2-11"],
    "will topic and message present although the will flag is 0",
    frame(0x10, connect_body(payload=Buf(s("c"), s("w"), s(b"m")))), "trailing_bytes")
bad(C, "username-without-flag", ["MQTT-3.1.2-18"], "a user name present although its flag is 0",
    frame(0x10, connect_body(payload=Buf(s("c"), s("u")))), "trailing_bytes")
bad(C, "password-without-flag", ["MQTT-3.1.2-20"],
    "a password present although its flag is 0 (user name flag 1)",
    frame(0x10, connect_body(flags=0x82, payload=Buf(s("c"), s("u"), s(b"p")))),
    "trailing_bytes")
bad(C, "one-trailing-byte", [], "one byte after the last field",
    frame(0x10, connect_body(payload=Buf(s("c"), b"\x00"))), "trailing_bytes")
bad(C, "fields-out-of-order", ["MQTT-3.1.3-1", "MQTT-4.7.1-1"],
    "user name a/+ sent before the will topic: read in the fixed order it is the will topic, "
    "which may not hold a wildcard",
    frame(0x10, connect_body(flags=0x86, payload=Buf(s("c"), s("a/+"), s("w"), s(b"m")))),
    "wildcard_in_topic_name")

for field, flags, mk, rules in [
        ("client-id", 0x02, lambda v: Buf(s(v)), ["MQTT-3.1.3-4"]),
        ("will-topic", 0x06, lambda v: Buf(s("c"), s(v), s(b"m")), ["MQTT-3.1.3-10"]),
        ("username", 0x82, lambda v: Buf(s("c"), s(v)), ["MQTT-3.1.3-11"])]:
    for slug, value, kind, desc in [
            ("invalid-byte", b"a\xffb", "invalid_utf8", "the byte FF"),
            ("surrogate", b"\xed\xa0\x80", "invalid_utf8", "an encoded surrogate U+D800"),
            ("overlong-nul", b"\xc0\x80", "invalid_utf8", "the overlong form C0 80 of U+0000"),
            ("overlong-slash", b"\xe0\x80\xaf", "invalid_utf8", "a three-byte overlong '/'"),
            ("truncated", b"a\xe2\x82", "invalid_utf8", "a three-byte sequence cut short"),
            ("stray-continuation", b"\x80a", "invalid_utf8", "a stray continuation byte"),
            ("above-10ffff", b"\xf4\x90\x80\x80", "invalid_utf8", "a code point above U+10FFFF"),
            ("nul", b"a\x00b", "null_character", "U+0000")]:
        extra = ["MQTT-4.7.3-2"] if field == "will-topic" and kind == "null_character" else []
        bad(C, f"{field}-{slug}", rules + extra, f"{field.replace('-', ' ')} holding {desc}",
            frame(0x10, connect_body(flags=flags, payload=mk(value))), kind)
bad(C, "will-topic-wildcard", ["MQTT-3.1.3-10", "MQTT-4.7.1-1"], "will topic a/# holds a wildcard",
    frame(0x10, connect_body(flags=0x06, payload=Buf(s("c"), s("a/#"), s(b"m")))),
    "wildcard_in_topic_name")
bad(C, "will-topic-empty", ["MQTT-3.1.3-10"], "zero-length will topic",
    frame(0x10, connect_body(flags=0x06, payload=Buf(s("c"), s(""), s(b"m")))), "empty_topic")

full = connect(client_id="client-1", will=("w", b"m", 1, False), username="u", password=b"p")
for cut in [1, 2, 8, 12, len(full[0]) - 1]:
    short(C, f"prefix-{cut}", ["§3.1"], f"the first {cut} bytes of a CONNECT", full, cut)

# ----- CONNACK ------------------------------------------------------------------------

A = "connack"
ok(A, "accepted", ["§3.2.2.3"], "connection accepted, no session", connack(False, 0))
ok(A, "accepted-session-present", ["§3.2.2.2"], "connection accepted, session present",
   connack(True, 0))
for code in range(1, 6):
    ok(A, f"refused-{code}", ["MQTT-3.2.2-4", "§3.2.2.3"], f"refused with return code {code}",
       connack(False, code))
    bad(A, f"refused-{code}-session-present", [],
        f"return code {code} with session present set", raw(f"200201{code:02x}"),
        "session_present_with_refusal")
for flags in [0x02, 0x80, 0xFE, 0xFF]:
    bad(A, f"reserved-flags-0x{flags:02x}", [], f"acknowledge flags 0x{flags:02x}: bits 7-1 are "
        "reserved", raw(f"2002{flags:02x}00"), "connack_reserved_flags")
for code in [6, 0x7F, 0xFF]:
    bad(A, f"return-code-{code}", [], f"return code {code} is reserved",
        raw(f"200200{code:02x}"), "invalid_connect_return_code")
for n, h in [(0, "2000"), (1, "200100"), (3, "2003000000")]:
    bad(A, f"remaining-length-{n}", ["§3.2.1"], f"CONNACK with Remaining Length {n}", raw(h),
        "invalid_remaining_length")
for cut in [1, 2, 3]:
    short(A, f"prefix-{cut}", ["§3.2"], f"the first {cut} bytes of a CONNACK",
          connack(False, 0), cut)

# ----- PUBLISH ------------------------------------------------------------------------

P = "publish"
for qos in range(3):
    for dup in (False, True):
        for retain in (False, True):
            if qos == 0 and dup:
                continue
            first = 0x30 | dup << 3 | qos << 1 | retain
            ok(P, f"first-byte-0x{first:02x}", ["MQTT-3.3.1-2", "MQTT-2.3.1-5"] if qos == 0 else
               ["MQTT-2.3.1-1", "§3.3.1"], f"PUBLISH QoS {qos}, dup {int(dup)}, retain {int(retain)}",
               publish(qos=qos, dup=dup, retain=retain, packet_id=10 if qos else None))
ok(P, "qos0-no-packet-id", ["MQTT-2.3.1-5"],
   "QoS 0: the two bytes after the topic belong to the payload", publish("a", b"\x00\x0a\xff"))
ok(P, "empty-payload", ["§3.3.3"], "zero-length payload", publish(payload=b""))
ok(P, "empty-payload-qos2", ["§3.3.3"], "QoS 2 with zero-length payload",
   publish(payload=b"", qos=2, packet_id=7))
ok(P, "retained-empty-payload", ["§3.3.3"], "retained zero-length payload (clears the retained "
   "message)", publish(payload=b"", retain=True))
ok(P, "packet-id-1", ["MQTT-2.3.1-1"], "smallest packet identifier", publish(qos=1, packet_id=1))
ok(P, "packet-id-65535", ["MQTT-2.3.1-1"], "largest packet identifier",
   publish(qos=2, packet_id=65535))
ok(P, "topic-one-character", ["MQTT-4.7.3-1", "MQTT-3.3.2-1"], "a one-character topic",
   publish(topic="a"))
ok(P, "topic-slash", ["MQTT-4.7.3-1"], "the topic '/' (two empty levels)", publish(topic="/"))
ok(P, "topic-space", ["MQTT-4.7.3-1"], "the topic ' '", publish(topic=" "))
ok(P, "topic-dollar", ["§4.7.2"], "a $SYS topic is well-formed", publish(topic="$SYS/uptime"))
ok(P, "topic-multibyte", ["MQTT-3.3.2-1", "MQTT-1.5.3-1"],
   "topic with 2-, 3- and 4-byte UTF-8 characters", publish(topic="é/€/\U0001F600"))
ok(P, "topic-bom-kept", ["MQTT-1.5.3-3", "MQTT-3.3.2-1"],
   "EF BB BF inside the topic is U+FEFF and is kept", publish(topic="a/\ufeff/b"))
ok(P, "topic-longest", ["MQTT-4.7.3-3"], "a topic of 65 535 bytes",
   publish(topic=Rep("t", 65535), payload=b"x"))
ok(P, "payload-binary", ["§3.3.3"], "the payload is any bytes, including 00 and invalid UTF-8",
   publish(payload=bytes(range(256))))

bad(P, "topic-empty", ["MQTT-3.3.2-1"], "zero-length topic", frame(0x30, Buf(s(""), b"x")),
    "empty_topic")
for t in ["a/+", "+", "a/#", "#", "a+b", "a#"]:
    bad(P, f"topic-wildcard-{t.replace('/', '_').replace('+', 'plus').replace('#', 'hash')}",
        ["MQTT-4.7.1-1"], f"topic name {t} holds a wildcard", frame(0x30, s(t)),
        "wildcard_in_topic_name")
bad(P, "topic-nul", ["MQTT-4.7.3-2", "MQTT-3.3.2-1"], "topic holding U+0000",
    frame(0x30, s(b"a\x00")), "null_character")
bad(P, "topic-invalid-utf8", ["MQTT-3.3.2-1"], "topic holding the byte FF",
    frame(0x30, s(b"a\xff")), "invalid_utf8")
bad(P, "topic-surrogate", ["MQTT-3.3.2-1"], "topic holding an encoded surrogate U+DFFF",
    frame(0x30, s(b"\xed\xbf\xbf")), "invalid_utf8")
bad(P, "packet-id-zero-qos1", [], "QoS 1 with packet identifier 0",
    frame(0x32, Buf(s("a"), u16(0), b"x")), "zero_packet_id")
bad(P, "packet-id-zero-qos2", [], "QoS 2 with packet identifier 0",
    frame(0x34, Buf(s("a"), u16(0))), "zero_packet_id")
bad(P, "empty-body", ["MQTT-3.3.2-1"], "Remaining Length 0: no topic", raw("3000"),
    "unexpected_end")
bad(P, "half-topic-length", ["MQTT-3.3.2-1"], "one byte of topic length", raw("300100"),
    "unexpected_end")
bad(P, "topic-overruns", ["MQTT-3.3.2-1"], "topic length 5 with two bytes left",
    raw("3004 0005 6162"), "unexpected_end")
bad(P, "no-packet-id", ["MQTT-2.3.1-1"], "QoS 1 ending after the topic",
    frame(0x32, s("a")), "unexpected_end")
bad(P, "half-packet-id", ["MQTT-2.3.1-1"], "QoS 2 with one byte of packet identifier",
    frame(0x34, Buf(s("a"), b"\x00")), "unexpected_end")
bad(P, "qos3", ["MQTT-2.2.2-2"], "both QoS bits set", frame(0x36, Buf(s("a"), u16(1))),
    "publish_qos3")
bad(P, "dup-qos0", ["MQTT-2.2.2-2"], "DUP set on a QoS 0 PUBLISH", frame(0x38, s("a")),
    "publish_dup_with_qos0")
p = publish(topic="a/b", payload=b"hello", qos=1, packet_id=3)
for cut in [1, 2, 4, 7, len(p[0]) - 1]:
    short(P, f"prefix-{cut}", ["§3.3"], f"the first {cut} bytes of a PUBLISH", p, cut)
big = publish(topic="a", payload=Rep(b"\xab", 2097151 - 3))
short(P, "prefix-of-2-mib-publish", ["§2.2.3"],
      "the fixed header and topic of a PUBLISH with Remaining Length 2 097 151", big, 7)

# ----- PUBACK, PUBREC, PUBREL, PUBCOMP ------------------------------------------------

Q = "pub_acks"
for t in (4, 5, 6, 7):
    name = TYPES[t][0]
    low = name.lower()
    section = f"§3.{t}"
    rules = [section] + (["MQTT-3.6.1-1"] if t == 6 else [])
    for pid in (1, 0x1234, 65535):
        ok(Q, f"{low}-{pid}", rules, f"{name} with packet identifier {pid}", id_only(t, pid))
    first = t << 4 | TYPES[t][1]
    bad(Q, f"{low}-packet-id-zero", [section, "§2.3.1"], f"{name} with packet identifier 0",
        raw(f"{first:02x}020000"), "zero_packet_id")
    fixed_rule = FIXED_RL[t][1]
    for n, h in [(0, ""), (1, "00"), (3, "000100"), (4, "00010002")]:
        bad(Q, f"{low}-remaining-length-{n}", [fixed_rule],
            f"{name} with Remaining Length {n}", raw(f"{first:02x}{n:02x}{h}"),
            "invalid_remaining_length")
    for cut in (1, 2, 3):
        short(Q, f"{low}-prefix-{cut}", [fixed_rule], f"the first {cut} bytes of a {name}",
              id_only(t, 5), cut)
bad(Q, "pubrel-flags-0000", ["MQTT-2.2.2-1", "MQTT-2.2.2-2"],
    "PUBREL with flag nibble 0000 instead of 0010", raw("60020001"), "invalid_flags",
    rule="MQTT-3.6.1-1")

# ----- SUBSCRIBE and SUBACK -----------------------------------------------------------

S = "subscribe"
ok(S, "spec-example", ["MQTT-3.8.3-1", "MQTT-2.3.1-1"],
   "the example of §3.8.3: a/b at QoS 1 and c/d at QoS 2, packet id 10",
   subscribe(10, [("a/b", 1), ("c/d", 2)]))
for q in range(3):
    ok(S, f"qos-{q}", ["MQTT-3.8.3-4"], f"one filter at requested QoS {q}", subscribe(1, [("a", q)]))
for f in ["#", "+", "a/#", "a/+/b", "+/+", "+/#", "/#", "/+", "/", "$SYS/#", "sport/tennis/+",
          "é/+", "\ufeff/#"]:
    slug = (f.replace("/", "_").replace("+", "plus").replace("#", "hash").replace("$", "dollar")
            .replace("é", "e-acute").replace("\ufeff", "bom"))
    rules = ["MQTT-3.8.3-1"]
    rules += ["MQTT-4.7.1-2"] if "#" in f else []
    rules += ["MQTT-4.7.1-3"] if "+" in f else []
    rules += ["MQTT-1.5.3-3"] if "\ufeff" in f else []
    ok(S, f"filter-{slug}", rules, f"topic filter {f!r}", subscribe(2, [(f, 0)]))
ok(S, "many-filters", ["MQTT-3.8.3-1"], "five filters, mixed QoS",
   subscribe(65535, [("a", 0), ("b/+", 1), ("c/#", 2), ("#", 0), ("d", 1)]))

def sub(body):
    return frame(0x82, Buf(u16(1), body))

bad(S, "no-filters", [], "packet identifier only", sub(b""), "empty_subscribe")
for q in [3, 4, 0x80, 0x81, 0xFC]:
    bad(S, f"requested-qos-0x{q:02x}", [], f"requested QoS byte 0x{q:02x}",
        sub(Buf(s("a"), bytes([q]))), "invalid_subscribe_qos")
bad(S, "second-requested-qos-bad", [], "the second filter's QoS byte is 0x03",
    sub(Buf(s("a"), b"\x00", s("b"), b"\x03")), "invalid_subscribe_qos")
bad(S, "filter-empty", ["MQTT-3.8.3-1"], "zero-length topic filter", sub(Buf(s(""), b"\x00")),
    "empty_topic")
for f, kind in [("a#", "invalid_multi_level_wildcard"), ("a/#/b", "invalid_multi_level_wildcard"),
                ("#/", "invalid_multi_level_wildcard"), ("##", "invalid_multi_level_wildcard"),
                ("a/b#", "invalid_multi_level_wildcard"),
                ("a+", "invalid_single_level_wildcard"), ("+a", "invalid_single_level_wildcard"),
                ("a/++/b", "invalid_single_level_wildcard"),
                ("sport+", "invalid_single_level_wildcard")]:
    slug = f.replace("/", "_").replace("+", "plus").replace("#", "hash")
    bad(S, f"filter-{slug}", ["MQTT-3.8.3-1"], f"topic filter {f!r}", sub(Buf(s(f), b"\x00")),
        kind)
bad(S, "filter-nul", ["MQTT-3.8.3-1", "MQTT-4.7.3-2"], "topic filter holding U+0000",
    sub(Buf(s(b"a\x00"), b"\x00")), "null_character")
bad(S, "filter-invalid-utf8", ["MQTT-3.8.3-1"], "topic filter holding the byte FE",
    sub(Buf(s(b"\xfe"), b"\x00")), "invalid_utf8")
bad(S, "packet-id-zero", [], "SUBSCRIBE with packet identifier 0",
    frame(0x82, Buf(u16(0), s("a"), b"\x00")), "zero_packet_id")
bad(S, "no-requested-qos", [], "the last filter has no QoS byte", sub(s("a")), "unexpected_end")
bad(S, "filter-overruns", [], "filter length 4 with one byte left", sub(Buf(u16(4), b"a")),
    "unexpected_end")
bad(S, "empty-body", [], "Remaining Length 0: no packet identifier", raw("8200"),
    "unexpected_end")
bad(S, "half-packet-id", [], "one byte of packet identifier", raw("820100"), "unexpected_end")
sp = subscribe(10, [("a/b", 1), ("c/d", 2)])
for cut in [1, 2, 5, len(sp[0]) - 1]:
    short(S, f"prefix-{cut}", ["§3.8"], f"the first {cut} bytes of a SUBSCRIBE", sp, cut)

for codes, slug in [([0], "granted-0"), ([1], "granted-1"), ([2], "granted-2"),
                    ([0x80], "failure"), ([0, 1, 2, 0x80], "all-codes")]:
    ok(S, f"suback-{slug}", ["MQTT-3.9.3-2", "§3.9"], f"SUBACK with codes {codes}",
       suback(10, codes))
ok(S, "suback-many", ["MQTT-3.9.3-2"], "SUBACK with 200 codes", suback(1, [1] * 200))
bad(S, "suback-no-codes", [], "SUBACK with packet identifier only", raw("90020001"),
    "empty_suback")
for c in [3, 0x7F, 0x81, 0xFF]:
    bad(S, f"suback-code-0x{c:02x}", [], f"SUBACK return code 0x{c:02x} is reserved",
        raw(f"90030001{c:02x}"), "invalid_suback_code")
bad(S, "suback-packet-id-zero", ["§3.9", "§2.3.1"], "SUBACK with packet identifier 0",
    raw("9003000000"), "zero_packet_id")
bad(S, "suback-empty-body", [], "SUBACK with Remaining Length 0", raw("9000"), "unexpected_end")
bad(S, "suback-half-packet-id", [], "SUBACK with one byte of packet identifier", raw("900100"),
    "unexpected_end")
for cut in [1, 2, 4]:
    short(S, f"suback-prefix-{cut}", ["§3.9"], f"the first {cut} bytes of a SUBACK",
          suback(10, [0, 1]), cut)

# ----- UNSUBSCRIBE and UNSUBACK -------------------------------------------------------

U = "unsubscribe"
ok(U, "one-filter", ["MQTT-3.10.3-1", "MQTT-2.3.1-1"], "one filter", unsubscribe(1, ["a/b"]))
ok(U, "spec-example", ["MQTT-3.10.3-1"], "the example of §3.10.3: a/b and c/d",
   unsubscribe(10, ["a/b", "c/d"]))
ok(U, "wildcards", ["MQTT-3.10.3-1", "MQTT-4.7.1-2", "MQTT-4.7.1-3"], "filters with wildcards",
   unsubscribe(2, ["#", "+/x", "a/#"]))
ok(U, "multibyte-bom", ["MQTT-3.10.3-1", "MQTT-1.5.3-3"], "filter with U+FEFF and multi-byte "
   "characters", unsubscribe(3, ["\ufeff/€"]))

def unsub(body):
    return frame(0xA2, Buf(u16(1), body))

bad(U, "no-filters", [], "packet identifier only", unsub(b""), "empty_unsubscribe")
bad(U, "dangling-byte", ["MQTT-3.10.3-1"], "a byte after the last filter (no QoS bytes here)",
    unsub(Buf(s("a"), b"\x01")), "unexpected_end")
bad(U, "filter-empty", ["MQTT-3.10.3-1"], "zero-length filter", unsub(s("")), "empty_topic")
bad(U, "filter-bad-hash", ["MQTT-3.10.3-1"], "filter a# ", unsub(s("a#")),
    "invalid_multi_level_wildcard")
bad(U, "filter-bad-plus", ["MQTT-3.10.3-1"], "filter a/b+", unsub(s("a/b+")),
    "invalid_single_level_wildcard")
bad(U, "filter-invalid-utf8", ["MQTT-3.10.3-1"], "filter holding an overlong sequence",
    unsub(s(b"\xc1\xbf")), "invalid_utf8")
bad(U, "filter-nul", ["MQTT-3.10.3-1", "MQTT-4.7.3-2"], "filter holding U+0000",
    unsub(s(b"\x00")), "null_character")
bad(U, "packet-id-zero", [], "UNSUBSCRIBE with packet identifier 0",
    frame(0xA2, Buf(u16(0), s("a"))), "zero_packet_id")
bad(U, "empty-body", [], "Remaining Length 0", raw("a200"), "unexpected_end")
up = unsubscribe(10, ["a/b", "c/d"])
for cut in [1, 2, 6, len(up[0]) - 1]:
    short(U, f"prefix-{cut}", ["§3.10"], f"the first {cut} bytes of an UNSUBSCRIBE", up, cut)
for pid in (1, 65535):
    ok(U, f"unsuback-{pid}", ["§3.11"], f"UNSUBACK with packet identifier {pid}",
       id_only(11, pid))
bad(U, "unsuback-packet-id-zero", ["§3.11", "§2.3.1"], "UNSUBACK with packet identifier 0",
    raw("b0020000"), "zero_packet_id")
for n, h in [(0, ""), (1, "00"), (3, "000100")]:
    bad(U, f"unsuback-remaining-length-{n}", ["§3.11.1"], f"UNSUBACK with Remaining Length {n}",
        raw(f"b0{n:02x}{h}"), "invalid_remaining_length")
short(U, "unsuback-prefix-3", ["§3.11"], "the first 3 bytes of an UNSUBACK", id_only(11, 9), 3)

# ----- PINGREQ, PINGRESP, DISCONNECT --------------------------------------------------

G = "ping_disconnect"
for t in (12, 13, 14):
    name = TYPES[t][0]
    low = name.lower()
    rules = ["MQTT-3.14.1-1"] if t == 14 else [FIXED_RL[t][1]]
    ok(G, low, rules, f"{name}", bare(t))
    ok(G, f"{low}-non-minimal-length", [FIXED_RL[t][1], "§2.2.3"],
       f"{name} with Remaining Length 0 encoded as 80 00", (raw(f"{t << 4:02x}8000"),
                                                            bare(t)[1]),
       encodes_to=bare(t)[0])
    for n in (1, 2, 127):
        bad(G, f"{low}-remaining-length-{n}", [FIXED_RL[t][1]],
            f"{name} with Remaining Length {n}", raw(f"{t << 4:02x}{n:02x}" + "00" * n),
            "invalid_remaining_length")
    short(G, f"{low}-prefix-1", [FIXED_RL[t][1]], f"the first byte of a {name}", bare(t), 1)
bad(G, "disconnect-flags-0001", ["MQTT-2.2.2-1", "MQTT-2.2.2-2"],
    "DISCONNECT with flag nibble 0001", raw("e100"), "invalid_flags", rule="MQTT-3.14.1-1")


# ---------------------------------------------------------------------------------------

def render(vectors):
    # ASCII only, so that U+FEFF and friends stay visible, except the section sign.
    lines = [json.dumps(v, ensure_ascii=True, separators=(",", ":")).replace("\\u00a7", "§")
             for v in vectors]
    return "[\n" + ",\n".join(lines) + "\n]\n"


def main():
    check = "--check" in sys.argv[1:]
    ids = set()
    stale = []
    for name, vectors in sorted(FILES.items()):
        for v in vectors:
            assert v["id"] not in ids, v["id"]
            ids.add(v["id"])
        text = render(vectors)
        assert len(text.encode()) < 1_000_000, name
        path = os.path.join(OUT, name + ".json")
        if check:
            try:
                with open(path, encoding="utf-8") as f:
                    if f.read() != text:
                        stale.append(path)
            except FileNotFoundError:
                stale.append(path)
        else:
            os.makedirs(OUT, exist_ok=True)
            with open(path, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
    if check:
        existing = {f[:-5] for f in os.listdir(OUT) if f.endswith(".json")}
        stale += [os.path.join(OUT, f + ".json") for f in sorted(existing - set(FILES))]
        if stale:
            print("out of date: " + ", ".join(stale), file=sys.stderr)
            sys.exit(1)
    else:
        print(f"{len(ids)} vectors in {len(FILES)} files")


if __name__ == "__main__":
    main()
