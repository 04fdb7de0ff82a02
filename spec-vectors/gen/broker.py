#!/usr/bin/env python3
"""Generates the broker scenario vectors in spec-vectors/scenarios/broker/.

Standard library only. The expected outcomes are written here from the specification
(OASIS MQTT Version 3.1.1 Plus Errata 01) and AWS IoT Core's documented departures, not
recorded from an implementation. Each vector is a timeline a TCP client could play
against any broker.

    python3 spec-vectors/gen/broker.py           # rewrite the JSON files
    python3 spec-vectors/gen/broker.py --check   # fail if the files are not up to date

The format is described in spec-vectors/scenarios/BROKER.md.
"""
import json
import os
import sys

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scenarios", "broker")
V = []
def hx(s): return s.encode().hex()
def C(cid, clean=True, ka=60, will=None, user=None, pw=None):
    d = {"type": "CONNECT", "client_id": cid, "clean_session": clean, "keep_alive": ka}
    if will: d["will"] = will
    if user is not None: d["username"] = user
    if pw is not None: d["password_hex"] = hx(pw)
    return d
def W(topic, msg, qos=0, retain=False): return {"topic": topic, "message_hex": hx(msg), "qos": qos, "retain": retain}
def CA(rc=0, sp=False): return {"type": "CONNACK", "session_present": sp, "return_code": rc}
def rep(unit, n): return {"repeat": unit, "count": n}
def P(topic, qos=0, pid=None, payload="", retain=False, dup=False):
    d = {"type": "PUBLISH", "topic": topic, "qos": qos}
    if pid is not None: d["packet_id"] = pid
    if isinstance(payload, dict): d["payload_hex"] = payload
    elif payload: d["payload_hex"] = hx(payload)
    if retain: d["retain"] = True
    if dup: d["dup"] = True
    return d
def SUB(pid, *fs): return {"type": "SUBSCRIBE", "packet_id": pid, "filters": [{"filter": f, "qos": q} for f, q in fs]}
def SA(pid, *codes): return {"type": "SUBACK", "packet_id": pid, "return_codes": list(codes)}
def UNSUB(pid, *fs): return {"type": "UNSUBSCRIBE", "packet_id": pid, "filters": list(fs)}
def UA(pid): return {"type": "UNSUBACK", "packet_id": pid}
def PA(pid): return {"type": "PUBACK", "packet_id": pid}
def PREC(pid): return {"type": "PUBREC", "packet_id": pid}
def PREL(pid): return {"type": "PUBREL", "packet_id": pid}
def PCOMP(pid): return {"type": "PUBCOMP", "packet_id": pid}
PING = {"type": "PINGREQ"}; PONG = {"type": "PINGRESP"}; DISC = {"type": "DISCONNECT"}
def op(n): return {"open": n}
def send(n, *ps): return {"send": n, "packet": ps[0]} if len(ps) == 1 else {"send": n, "packets": list(ps)}
def sendhex(n, h): return {"send": n, "hex": h}
def exp(n, *ps): return {"expect": n, "packets": list(ps)}
def closed(n): return {"expect_closed": n}
def nothing(n): return {"expect_nothing": n}
def adv(ms): return {"advance_ms": ms}
def close(n): return {"close": n}
def oneof(n, *choices): return {"expect_one_of": n, "choices": [{"packets": list(p), "closed": c} for p, c in choices]}
def distinct(*names): return {"distinct": list(names)}
def conn(n, cid, clean=True, sp=False, **kw): return [op(n), send(n, C(cid, clean, **kw)), exp(n, CA(0, sp))]
def sub(n, pid, *fs, codes=None):
    return [send(n, SUB(pid, *fs)), exp(n, SA(pid, *(codes if codes is not None else [q for _, q in fs])))]
def vec(id, rules, desc, steps, profile="mqtt311", prefixable=True, setup=None, source=None):
    v = {"id": id, "rules": rules, "description": desc, "profile": profile}
    if source: v["source"] = source
    if not prefixable: v["prefixable"] = False
    if setup: v["setup"] = setup
    flat = []
    for s in steps:
        flat.extend(s if isinstance(s, list) else [s])
    v["steps"] = flat
    V.append(v)

def rl(n):
    out = b""
    while True:
        b = n % 128; n //= 128
        if n: b |= 0x80
        out += bytes([b])
        if not n: return out
def s16(b): return len(b).to_bytes(2, "big") + b
def raw_connect(name=b"MQTT", level=4, flags=0x02, ka=60, cid=b"c1", extra=b""):
    body = s16(name) + bytes([level, flags]) + ka.to_bytes(2, "big") + s16(cid) + extra
    return (bytes([0x10]) + rl(len(body)) + body).hex()

# ---------------------------------------------------------------- connection (server layer)
vec("connack-accepts-a-valid-connect", ["MQTT-3.1.4-4", "MQTT-3.2.0-1", "MQTT-3.2.2-1", "MQTT-3.1.3-5"],
    "A valid CONNECT with clean session 1 and a 23-character alphanumeric client id is answered with CONNACK 0, session present 0, as the first packet.",
    [conn(1, "Abcdefghij0123456789xyz")], prefixable=False)
vec("connack-comes-before-pipelined-answers", ["MQTT-3.2.0-1", "MQTT-3.12.4-1"],
    "A PINGREQ written right behind the CONNECT is answered only after the CONNACK, which is the first packet the server sends.",
    [op(1), send(1, C("c1"), PING), exp(1, CA(0), PONG)])
vec("second-connect-closes-the-connection", ["MQTT-3.1.0-2"],
    "A second CONNECT on a connection already accepted is a protocol violation: the server closes without answering.",
    [conn(1, "c1"), send(1, C("c1")), closed(1)])
vec("first-packet-not-connect-closes", ["MQTT-3.1.4-1"],
    "A connection whose first packet is not CONNECT is closed without any CONNACK.",
    [op(1), send(1, PING), closed(1)])
vec("unknown-protocol-name-closes-without-connack", ["MQTT-3.1.2-1", "MQTT-3.1.4-1"],
    "A CONNECT whose protocol name is MQTX is not treated as MQTT 3.1.1: the server closes without CONNACK.",
    [op(1), sendhex(1, raw_connect(name=b"MQTX")), closed(1)], prefixable=False)
vec("unsupported-protocol-level-gets-connack-1", ["MQTT-3.1.2-2", "MQTT-3.2.2-5"],
    "A CONNECT with protocol name MQTT and level 6 is answered with CONNACK return code 1, then the connection is closed.",
    [op(1), sendhex(1, raw_connect(level=6)), exp(1, CA(1)), closed(1)], prefixable=False)
vec("refused-connect-ignores-pipelined-packets", ["MQTT-3.1.4-5", "MQTT-3.2.2-5"],
    "A refused CONNECT (level 6) followed in the same write by a SUBSCRIBE and a PINGREQ: only CONNACK 1 comes back, then the close.",
    [op(1), sendhex(1, raw_connect(level=6) + "820600010001" "6101" + "c000"), exp(1, CA(1)), closed(1)], prefixable=False)
vec("malformed-connect-closes-without-connack", ["MQTT-3.1.4-1", "MQTT-3.2.2-6"],
    "A CONNECT with the reserved flag bit set is malformed: the server closes without sending CONNACK (no return code fits).",
    [op(1), sendhex(1, raw_connect(flags=0x03)), closed(1)], prefixable=False)
vec("empty-client-id-with-clean-session-is-assigned-or-refused", ["MQTT-3.1.3-6", "MQTT-3.1.3-9"],
    "A zero-length client id with clean session 1 is either accepted (the server assigns an id, CONNACK 0 with session present 0) or refused with CONNACK 2 and closed.",
    [op(1), send(1, C("")), oneof(1, ([CA(0)], False), ([CA(2)], True))])
vec("empty-client-id-without-clean-session-gets-connack-2", ["MQTT-3.1.3-8", "MQTT-3.1.3-9", "MQTT-3.2.2-5"],
    "A zero-length client id with clean session 0 is refused with CONNACK 2 and the connection is closed.",
    [op(1), send(1, C("", clean=False)), exp(1, CA(2)), closed(1)])
CRED = {"credentials": [{"username": "user", "password": "secret"}]}
vec("bad-password-is-refused-and-closed", ["MQTT-3.2.2-5", "MQTT-3.1.4-5"],
    "With the broker configured to accept only user/secret, a CONNECT with a wrong password (and a pipelined PINGREQ) gets CONNACK 4 or 5, nothing else, and is closed.",
    [op(1), send(1, C("c1", user="user", pw="wrong"), PING), oneof(1, ([CA(4)], True), ([CA(5)], True))], setup=CRED)
vec("missing-credentials-are-refused-and-closed", ["MQTT-3.2.2-5"],
    "With the broker configured to require user/secret, a CONNECT without user name gets CONNACK 5 (or 4) and is closed; the right credentials are accepted.",
    [op(1), send(1, C("c1")), oneof(1, ([CA(5)], True), ([CA(4)], True)),
     op(2), send(2, C("c1", user="user", pw="secret")), exp(2, CA(0))], setup=CRED)
vec("pingreq-gets-pingresp", ["MQTT-3.12.4-1"],
    "Each PINGREQ is answered with a PINGRESP.",
    [conn(1, "c1"), send(1, PING), exp(1, PONG), send(1, PING), exp(1, PONG)])
vec("keep-alive-times-out-after-one-and-a-half-periods", ["MQTT-3.1.2-24", "MQTT-3.1.2-8"],
    "With keep-alive 2 s the server closes a silent connection after 3 s (1.5 x), not before, and the will fires. A checker may allow timing slack.",
    [conn(1, "sub"), sub(1, 1, ("ka/will", 0)),
     conn(2, "c2", ka=2, will=W("ka/will", "gone")), adv(2900), nothing(2), adv(100), closed(2),
     exp(1, P("ka/will", payload="gone"))])
vec("any-packet-resets-the-keep-alive", ["MQTT-3.1.2-24"],
    "A PINGREQ every 2.5 s keeps a keep-alive 2 s connection open past 3 s.",
    [conn(1, "c1", ka=2), adv(2500), send(1, PING), exp(1, PONG), adv(2500), send(1, PING), exp(1, PONG), nothing(1)])
vec("suback-echoes-the-id-with-one-code-per-filter", ["MQTT-3.8.4-1", "MQTT-3.8.4-2", "MQTT-3.8.4-5", "MQTT-3.9.3-1", "MQTT-2.3.1-7", "MQTT-3.8.4-4"],
    "A SUBSCRIBE with three filters at QoS 2, 0 and 1 is answered by one SUBACK with its packet id and the granted QoS in filter order.",
    [conn(1, "c1"), sub(1, 7, ("a/x", 2), ("b/x", 0), ("c/x", 1))])
vec("suback-failure-code-for-a-refused-filter", ["MQTT-3.8.4-5", "MQTT-3.9.3-1", "MQTT-3.8.4-4"],
    "With the broker configured to refuse the filter secret/#, a SUBSCRIBE of a/x, secret/# and b/x gets 1, 0x80, 1; the others work.",
    [conn(1, "c1"), sub(1, 3, ("a/x", 1), ("secret/#", 1), ("b/x", 1), codes=[1, 128, 1]),
     conn(2, "c2"), send(2, P("b/x", 1, 1, "m")), exp(2, PA(1)), exp(1, P("b/x", 1, "?m", "m"))],
    setup={"deny_subscribe": ["secret/#"]})
vec("wildcards-refused-where-unsupported", ["MQTT-3.8.3-2"],
    "A broker configured without wildcard support answers a filter with + or # with 0x80 and a plain filter with its QoS.",
    [conn(1, "c1"), sub(1, 2, ("w/+", 1), ("w/#", 0), ("w/x", 1), codes=[128, 128, 1])],
    setup={"no_wildcards": True})
vec("unsubscribe-gets-one-unsuback-even-when-nothing-matched", ["MQTT-3.10.4-4", "MQTT-3.10.4-5", "MQTT-3.10.4-6", "MQTT-2.3.1-7"],
    "An UNSUBSCRIBE of two filters, neither subscribed, gets exactly one UNSUBACK with its packet id.",
    [conn(1, "c1"), send(1, UNSUB(9, "x/1", "x/2")), exp(1, UA(9)), nothing(1)])
vec("unauthorized-publish-is-acked-or-closed", ["MQTT-3.3.5-2"],
    "With the broker configured to refuse publishes to deny/x, a QoS 1 PUBLISH there is either acknowledged (and not delivered) or the connection is closed.",
    [conn(1, "sub"), sub(1, 1, ("deny/#", 1)), conn(2, "pub"), send(2, P("deny/x", 1, 4, "no")),
     oneof(2, ([PA(4)], False), ([], True)), nothing(1)],
    setup={"deny_publish": ["deny/x"]})
vec("disconnect-discards-the-will", ["MQTT-3.1.2-10", "MQTT-3.14.4-3"],
    "A client with a will that sends DISCONNECT is closed and its will is never published.",
    [conn(1, "sub"), sub(1, 1, ("dw/#", 1)), conn(2, "c2", will=W("dw/will", "bye", 1)), send(2, DISC), closed(2),
     adv(1000), nothing(1)])
vec("no-will-flag-publishes-nothing", ["MQTT-3.1.2-12"],
    "A client without a will whose connection drops causes no publication.",
    [conn(1, "sub"), sub(1, 1, ("#", 1)), conn(2, "c2"), close(2), adv(1000), nothing(1)], prefixable=False)
vec("outgoing-ids-are-distinct-while-in-flight", ["MQTT-2.3.1-4"],
    "Two QoS 1 messages in flight to one subscriber carry different packet ids; after both are acknowledged a third flows.",
    [conn(1, "sub"), sub(1, 1, ("ids/x", 1)), conn(2, "pub"),
     send(2, P("ids/x", 1, 1, "a")), exp(2, PA(1)), send(2, P("ids/x", 1, 2, "b")), exp(2, PA(2)),
     exp(1, P("ids/x", 1, "?a", "a"), P("ids/x", 1, "?b", "b")), distinct("a", "b"),
     send(1, PA("?a")), send(1, PA("?b")), send(2, P("ids/x", 1, 3, "c")), exp(2, PA(3)), exp(1, P("ids/x", 1, "?c", "c"))])

# ---------------------------------------------------------------- sessions
vec("persistent-session-resumes-subscriptions-and-queued-messages",
    ["MQTT-3.1.2-4", "MQTT-3.1.2-5", "MQTT-3.1.3-2", "MQTT-3.1.4-3", "MQTT-3.2.2-2", "MQTT-3.2.2-3", "MQTT-4.1.0-1"],
    "A clean-session-0 client subscribes (session present 0), disconnects; QoS 1 and QoS 2 messages published meanwhile are queued and delivered after it reconnects with session present 1, without resubscribing.",
    [conn(1, "ps", clean=False, sp=False), sub(1, 1, ("ps/t", 2)), send(1, DISC), closed(1),
     conn(2, "pub"), send(2, P("ps/t", 1, 1, "one")), exp(2, PA(1)), send(2, P("ps/t", 2, 2, "two")), exp(2, PREC(2)),
     send(2, PREL(2)), exp(2, PCOMP(2)),
     conn(3, "ps", clean=False, sp=True), exp(3, P("ps/t", 1, "?a", "one"), P("ps/t", 2, "?b", "two"))])
vec("clean-session-discards-the-stored-session", ["MQTT-3.1.2-6", "MQTT-3.2.2-1", "MQTT-3.2.2-3"],
    "A persistent session is thrown away by a clean-session-1 connect (session present 0, no messages, no subscription); a later clean-session-0 connect finds no session.",
    [conn(1, "cs", clean=False), sub(1, 1, ("cs/t", 1)), send(1, DISC), closed(1),
     conn(2, "pub"), send(2, P("cs/t", 1, 1, "lost")), exp(2, PA(1)),
     conn(3, "cs", clean=True, sp=False), nothing(3), send(2, P("cs/t", 1, 2, "x")), exp(2, PA(2)), nothing(3),
     send(3, DISC), closed(3), conn(4, "cs", clean=False, sp=False), nothing(4)])
vec("session-lasts-as-long-as-its-connection", ["MQTT-4.1.0-2", "MQTT-4.5.0-1"],
    "A clean-session-1 subscription keeps receiving for as long as the connection is open.",
    [conn(1, "s1"), sub(1, 1, ("live/t", 0)), conn(2, "pub"), send(2, P("live/t", 0, None, "1")), exp(1, P("live/t", payload="1")),
     adv(30000), send(1, PING), exp(1, PONG), send(2, P("live/t", 0, None, "2")), exp(1, P("live/t", payload="2"))])
vec("offline-queue-bound-drops-beyond-it", ["MQTT-3.1.2-5"],
    "With the broker configured to queue at most 2 messages per session, an offline session gets the first 2 of 3 QoS 1 messages after it resumes.",
    [conn(1, "q", clean=False), sub(1, 1, ("q/t", 1)), close(1),
     conn(2, "pub"), send(2, P("q/t", 1, 1, "1")), exp(2, PA(1)), send(2, P("q/t", 1, 2, "2")), exp(2, PA(2)),
     send(2, P("q/t", 1, 3, "3")), exp(2, PA(3)),
     conn(3, "q", clean=False, sp=True), exp(3, P("q/t", 1, "?a", "1"), P("q/t", 1, "?b", "2")), nothing(3)],
    setup={"max_queued": 2})
vec("unacked-message-resent-with-dup-on-resume", ["MQTT-3.1.2-4", "MQTT-3.2.2-2", "MQTT-2.3.1-4"],
    "A QoS 1 message delivered but not acknowledged before the connection dropped is sent again on resume, with the same packet id and DUP=1.",
    [conn(1, "rs", clean=False), sub(1, 1, ("rs/t", 1)), conn(2, "pub"), send(2, P("rs/t", 1, 1, "m")), exp(2, PA(1)),
     exp(1, P("rs/t", 1, "?a", "m")), close(1),
     conn(3, "rs", clean=False, sp=True), exp(3, P("rs/t", 1, "?a", "m", dup=True)), send(3, PA("?a")), nothing(3)])
vec("takeover-closes-the-older-connection", ["MQTT-3.1.4-2", "MQTT-3.1.2-8"],
    "A second connection with a client id in use is accepted and the first is closed; the first connection's will is published.",
    [conn(1, "sub"), sub(1, 1, ("to/will", 0)), conn(2, "dup", will=W("to/will", "old")), op(3), send(3, C("dup")),
     exp(3, CA(0)), closed(2), exp(1, P("to/will", payload="old"))])

# ---------------------------------------------------------------- wills
vec("will-published-when-the-connection-drops", ["MQTT-3.1.2-8", "MQTT-3.1.2-16", "MQTT-3.1.2-10"],
    "A will with retain 0 is published as an ordinary message when the connection drops without DISCONNECT, and is not retained.",
    [conn(1, "sub"), sub(1, 1, ("wd/t", 1)), conn(2, "c2", will=W("wd/t", "dead", 1)), close(2),
     exp(1, P("wd/t", 1, "?a", "dead")), send(1, PA("?a")), conn(3, "late"), sub(3, 1, ("wd/t", 1)), nothing(3)])
vec("will-with-retain-becomes-the-retained-message", ["MQTT-3.1.2-17", "MQTT-3.1.2-8"],
    "A will with retain 1 is published to current subscribers with RETAIN=0 and stored: a later subscriber receives it with RETAIN=1.",
    [conn(1, "sub"), sub(1, 1, ("wr/t", 0)), conn(2, "c2", will=W("wr/t", "dead", 0, True)), close(2),
     exp(1, P("wr/t", payload="dead")), conn(3, "late"), send(3, SUB(2, ("wr/t", 0))), exp(3, SA(2, 0), P("wr/t", payload="dead", retain=True)),
     send(3, P("wr/t", 0, None, "", retain=True)), exp(1, P("wr/t")), exp(3, P("wr/t"))])

# ---------------------------------------------------------------- routing
vec("delivered-qos-is-the-lower-of-publish-and-subscription", ["MQTT-3.8.4-6", "MQTT-4.5.0-1"],
    "A QoS 1 message goes at QoS 0 to a QoS 0 subscriber and at QoS 1 to a QoS 2 subscriber.",
    [conn(1, "s0"), sub(1, 1, ("dq/t", 0)), conn(2, "s2"), sub(2, 1, ("dq/t", 2)), conn(3, "pub"),
     send(3, P("dq/t", 1, 5, "m")), exp(3, PA(5)), exp(1, P("dq/t", payload="m")), exp(2, P("dq/t", 1, "?a", "m"))])
vec("overlapping-subscriptions-deliver-at-the-highest-qos", ["MQTT-3.3.5-1"],
    "A client subscribed with ov/+ at QoS 0 and ov/t at QoS 1 gets a QoS 1 message on ov/t at QoS 1: one copy, or additionally a QoS 0 copy.",
    [conn(1, "s"), sub(1, 1, ("ov/+", 0), ("ov/t", 1)), conn(2, "pub"), send(2, P("ov/t", 1, 1, "m")), exp(2, PA(1)),
     oneof(1, ([P("ov/t", 1, "?a", "m")], False), ([P("ov/t", 1, "?a", "m"), P("ov/t", payload="m")], False),
           ([P("ov/t", payload="m"), P("ov/t", 1, "?a", "m")], False))])
vec("topic-must-match-the-filter", ["MQTT-3.3.2-3"],
    "A subscriber of tm/+/c receives tm/b/c but not tm/b/d nor tm/b/c/d.",
    [conn(1, "s"), sub(1, 1, ("tm/+/c", 0)), conn(2, "pub"), send(2, P("tm/b/d", payload="no")), send(2, P("tm/b/c/d", payload="no")),
     send(2, P("tm/b/c", payload="yes")), exp(1, P("tm/b/c", payload="yes")), nothing(1)])
vec("hash-matches-the-parent-level", ["MQTT-3.3.2-3"],
    "Under MQTT 3.1.1 the filter hp/# matches hp itself and hp/x/y.",
    [conn(1, "s"), sub(1, 1, ("hp/#", 0)), conn(2, "pub"), send(2, P("hp", payload="1")), send(2, P("hp/x/y", payload="2")),
     exp(1, P("hp", payload="1"), P("hp/x/y", payload="2"))])
vec("dollar-topics-are-not-matched-by-leading-wildcards", ["MQTT-4.7.2-1"],
    "Subscribers of # and +/x do not receive a message on $x/x; a subscriber of $x/# does. Run on a broker without other traffic.",
    [conn(1, "s"), sub(1, 1, ("#", 0), ("+/x", 0)), conn(2, "d"), sub(2, 1, ("$x/#", 0)), conn(3, "pub"),
     send(3, P("$x/x", payload="s")), exp(2, P("$x/x", payload="s")), nothing(1)], prefixable=False)
vec("matching-is-case-and-byte-exact", ["MQTT-4.7.3-4"],
    "A subscriber of Case/x does not receive case/x nor CASE/x, only Case/x.",
    [conn(1, "s"), sub(1, 1, ("Case/x", 0)), conn(2, "pub"), send(2, P("case/x", payload="1")), send(2, P("CASE/x", payload="2")),
     send(2, P("Case/x", payload="3")), exp(1, P("Case/x", payload="3")), nothing(1)])
vec("forwarded-publish-does-not-copy-dup", ["MQTT-3.3.1-3"],
    "A QoS 1 PUBLISH received with DUP=1 is forwarded with DUP=0.",
    [conn(1, "s"), sub(1, 1, ("dup/t", 1)), conn(2, "pub"), send(2, P("dup/t", 1, 3, "m", dup=True)), exp(2, PA(3)),
     exp(1, P("dup/t", 1, "?a", "m"))])
vec("messages-keep-their-order", ["MQTT-4.6.0-5", "MQTT-4.6.0-6"],
    "Three QoS 1 messages from one publisher on one topic reach the subscriber in the order sent.",
    [conn(1, "s"), sub(1, 1, ("ord/t", 1)), conn(2, "pub"),
     send(2, P("ord/t", 1, 1, "1"), P("ord/t", 1, 2, "2"), P("ord/t", 1, 3, "3")), exp(2, PA(1), PA(2), PA(3)),
     exp(1, P("ord/t", 1, "?a", "1"), P("ord/t", 1, "?b", "2"), P("ord/t", 1, "?c", "3"))])
vec("resubscribe-replaces-and-resends-retained", ["MQTT-3.8.4-3"],
    "Subscribing again to an identical filter replaces it (new QoS, one copy per message) and sends the retained message again.",
    [conn(1, "pub"), send(1, P("rr/t", 1, 1, "kept", retain=True)), exp(1, PA(1)),
     conn(2, "s"), send(2, SUB(1, ("rr/t", 0))), exp(2, SA(1, 0), P("rr/t", payload="kept", retain=True)),
     send(2, SUB(2, ("rr/t", 1))), exp(2, SA(2, 1), P("rr/t", 1, "?a", "kept", retain=True)), send(2, PA("?a")),
     send(1, P("rr/t", 1, 2, "live")), exp(1, PA(2)), exp(2, P("rr/t", 1, "?b", "live")), nothing(2)])
vec("unsubscribe-compares-filters-literally", ["MQTT-3.10.4-1", "MQTT-3.10.4-2"],
    "Unsubscribing ul/b does not remove the subscription ul/+; unsubscribing ul/+ does, and no message is added after it.",
    [conn(1, "s"), sub(1, 1, ("ul/+", 0)), send(1, UNSUB(2, "ul/b")), exp(1, UA(2)), conn(2, "pub"),
     send(2, P("ul/b", payload="1")), exp(1, P("ul/b", payload="1")), send(1, UNSUB(3, "ul/+")), exp(1, UA(3)),
     send(2, P("ul/b", payload="2")), nothing(1)])
vec("unsubscribe-completes-started-deliveries", ["MQTT-3.10.4-3"],
    "A QoS 2 delivery started before an UNSUBSCRIBE still completes: PUBREC is answered with PUBREL. The publisher completes its own flow first, since a broker may deliver onward on PUBLISH or on PUBREL (4.3.3).",
    [conn(1, "s"), sub(1, 1, ("uc/t", 2)), conn(2, "pub"), send(2, P("uc/t", 2, 1, "m")), exp(2, PREC(1)),
     send(2, PREL(1)), exp(2, PCOMP(1)), exp(1, P("uc/t", 2, "?a", "m")), send(1, UNSUB(2, "uc/t")), exp(1, UA(2)), send(1, PREC("?a")), exp(1, PREL("?a")),
     send(1, PCOMP("?a")), nothing(1)])
vec("qos2-end-to-end-delivers-once", ["MQTT-4.5.0-1", "MQTT-2.3.1-4"],
    "A QoS 2 PUBLISH repeated before PUBREL is acknowledged again and delivered once; the outgoing QoS 2 flow completes.",
    [conn(1, "s"), sub(1, 1, ("q2/t", 2)), conn(2, "pub"), send(2, P("q2/t", 2, 9, "m")), exp(2, PREC(9)),
     send(2, P("q2/t", 2, 9, "m", dup=True)), exp(2, PREC(9)), send(2, PREL(9)), exp(2, PCOMP(9)),
     exp(1, P("q2/t", 2, "?a", "m")), send(1, PREC("?a")), exp(1, PREL("?a")), send(1, PCOMP("?a")), nothing(1)])

# ---------------------------------------------------------------- retained
vec("retained-message-is-sent-on-subscribe", ["MQTT-3.3.1-5", "MQTT-3.3.1-6", "MQTT-3.3.1-8"],
    "A retained QoS 1 message is stored and sent with RETAIN=1 to a later subscriber, matched through a wildcard.",
    [conn(1, "pub"), send(1, P("rt/a", 1, 1, "v", retain=True)), exp(1, PA(1)), conn(2, "s"),
     send(2, SUB(1, ("rt/+", 1))), exp(2, SA(1, 1), P("rt/a", 1, "?a", "v", retain=True))])
vec("retained-message-survives-the-end-of-sessions", ["MQTT-3.1.2-7"],
    "A retained message outlives the publisher's clean session and is delivered to a subscriber connecting later.",
    [conn(1, "pub"), send(1, P("rs2/t", 0, None, "v", retain=True)), send(1, DISC), closed(1),
     conn(2, "s"), send(2, SUB(1, ("rs2/t", 0))), exp(2, SA(1, 0), P("rs2/t", payload="v", retain=True))])
vec("qos0-retained-replaces-the-previous", ["MQTT-3.3.1-7"],
    "A QoS 0 retained message replaces an earlier QoS 1 one; a later subscriber gets the new one (the server may also have dropped it), never the old.",
    [conn(1, "pub"), send(1, P("r0/t", 1, 1, "old", retain=True)), exp(1, PA(1)), send(1, P("r0/t", 0, None, "new", retain=True)),
     conn(2, "s"), send(2, SUB(1, ("r0/t", 1))), oneof(2, ([SA(1, 1), P("r0/t", payload="new", retain=True)], False), ([SA(1, 1)], False))])
vec("routed-copies-have-retain-0", ["MQTT-3.3.1-9"],
    "A RETAIN=1 PUBLISH goes with RETAIN=0 to subscribers that were already subscribed.",
    [conn(1, "s"), sub(1, 1, ("r9/t", 0)), conn(2, "pub"), send(2, P("r9/t", 0, None, "v", retain=True)), exp(1, P("r9/t", payload="v"))])
vec("empty-retained-publish-clears-and-is-forwarded", ["MQTT-3.3.1-10", "MQTT-3.3.1-11"],
    "A zero-byte RETAIN=1 PUBLISH is forwarded to current subscribers and deletes the retained message: a later subscriber gets nothing.",
    [conn(1, "pub"), send(1, P("rc/t", 0, None, "v", retain=True)), conn(2, "s"), send(2, SUB(1, ("rc/t", 0))),
     exp(2, SA(1, 0), P("rc/t", payload="v", retain=True)), send(1, P("rc/t", 0, None, "", retain=True)), exp(2, P("rc/t")),
     conn(3, "late"), sub(3, 1, ("rc/t", 0)), nothing(3)])
vec("non-retained-publish-leaves-the-retained-message", ["MQTT-3.3.1-12"],
    "A RETAIN=0 PUBLISH neither stores, replaces nor removes the retained message.",
    [conn(1, "pub"), send(1, P("rk/t", 0, None, "kept", retain=True)), send(1, P("rk/t", 0, None, "live")),
     conn(2, "s"), send(2, SUB(1, ("rk/t", 0))), exp(2, SA(1, 0), P("rk/t", payload="kept", retain=True)), nothing(2)])

# ---------------------------------------------------------------- AWS IoT Core
A = "aws-iot"
vec("aws-qos2-publish-gets-no-ack-and-is-not-routed", ["MQTT-3.3.5-2"],
    "AWS IoT Core: a QoS 2 PUBLISH gets no PUBREC and no subscriber receives it; the connection stays open.",
    [conn(1, "s"), sub(1, 1, ("aq/t", 1)), conn(2, "pub"), send(2, P("aq/t", 2, 1, "m")), nothing(2), nothing(1),
     send(2, PING), exp(2, PONG)], profile=A)
vec("aws-qos2-subscribe-gets-no-suback", ["MQTT-3.8.4-1"],
    "AWS IoT Core: a SUBSCRIBE asking for QoS 2 gets no SUBACK and creates no subscription.",
    [conn(1, "s"), send(1, SUB(1, ("as/t", 2))), nothing(1), conn(2, "pub"), send(2, P("as/t", 0, None, "m")), nothing(1)], profile=A)
vec("aws-retained-publish-closes-the-connection", ["MQTT-3.3.1-5"],
    "AWS IoT Core (retain not supported): a PUBLISH with RETAIN=1 closes the connection.",
    [conn(1, "pub"), send(1, P("ar/t", 1, 1, "v", retain=True)), closed(1)], profile=A)
vec("aws-hash-does-not-match-the-parent-level", ["MQTT-3.3.2-3"],
    "AWS IoT Core: ah/# matches ah/x but not ah.",
    [conn(1, "s"), sub(1, 1, ("ah/#", 0)), conn(2, "pub"), send(2, P("ah", payload="no")), send(2, P("ah/x", payload="yes")),
     exp(1, P("ah/x", payload="yes")), nothing(1)], profile=A)
vec("aws-keep-alive-is-clamped-to-thirty-seconds", ["MQTT-3.1.2-24"],
    "AWS IoT Core: a keep-alive of 5 s is treated as 30 s, so the connection is closed after 45 s of silence, not 7.5 s.",
    [conn(1, "c", ka=5), adv(44900), nothing(1), adv(100), closed(1)], profile=A)
vec("aws-client-id-over-128-bytes-is-rejected", ["MQTT-3.1.3-9", "MQTT-3.1.3-5"],
    "AWS IoT Core: a 128-byte client id is accepted, a 129-byte one gets CONNACK 2 and is closed.",
    [conn(1, rep("a", 128)), op(2), send(2, C(rep("b", 129))), exp(2, CA(2)), closed(2)], profile=A, prefixable=False)
vec("aws-topic-over-the-limits-closes-the-connection", ["MQTT-4.8.0-1"],
    "AWS IoT Core: a PUBLISH with 8 slashes, or with a topic of 257 bytes, closes the connection; 7 slashes and 256 bytes are fine.",
    [conn(1, "c"), send(1, P("a/b/c/d/e/f/g/h", 1, 1, "ok")), exp(1, PA(1)), send(1, P(rep("t", 256), 1, 2, "ok")), exp(1, PA(2)),
     send(1, P("a/b/c/d/e/f/g/h/i", 1, 3, "no")), closed(1),
     conn(2, "d"), send(2, P(rep("t", 257), 1, 1, "no")), closed(2)], profile=A, prefixable=False)
vec("aws-payload-over-128-kib-closes-the-connection", ["MQTT-4.8.0-1"],
    "AWS IoT Core: a PUBLISH payload of 131072 bytes is accepted, one of 131073 bytes closes the connection.",
    [conn(1, "s"), sub(1, 1, ("big/t", 0)), conn(2, "c"), send(2, P("big/t", 1, 1, rep("78", 131072))), exp(2, PA(1)),
     exp(1, P("big/t", 0, None, rep("78", 131072))),
     send(2, P("big/t", 1, 2, rep("78", 131073))), closed(2), nothing(1)], profile=A)
vec("aws-at-most-eight-filters-per-subscribe", ["MQTT-3.8.4-5"],
    "AWS IoT Core: in a SUBSCRIBE of 9 filters the ninth is refused with 0x80.",
    [conn(1, "c"), sub(1, 1, *[("f/%d" % i, 1) for i in range(9)], codes=[1] * 8 + [128])], profile=A)
vec("aws-at-most-fifty-subscriptions", ["MQTT-3.8.4-5"],
    "AWS IoT Core: a session holds at most 50 subscriptions; the 51st filter is refused, replacing an existing one still works.",
    [conn(1, "c")] + [sub(1, i + 1, *[("s/%d/%d" % (i, j), 0) for j in range(5)]) for i in range(10)]
    + [sub(1, 11, ("s/extra", 0), ("s/0/0", 1), codes=[128, 1])], profile=A)
vec("aws-resume-resends-with-a-fresh-id-and-no-dup", ["MQTT-3.2.2-2", "MQTT-3.1.2-5"],
    "AWS IoT Core: session present 1 on resume; an unacknowledged QoS 1 message is resent with DUP=0 (its id may change), and a QoS 1 message queued while offline is delivered.",
    [conn(1, "r", clean=False), sub(1, 1, ("af/t", 1)), conn(2, "pub"), send(2, P("af/t", 1, 1, "first")), exp(2, PA(1)),
     exp(1, P("af/t", 1, "?a", "first")), close(1), send(2, P("af/t", 1, 2, "queued")), exp(2, PA(2)),
     conn(3, "r", clean=False, sp=True), exp(3, P("af/t", 1, "?b", "first"), P("af/t", 1, "?c", "queued")), distinct("b", "c")], profile=A)
vec("aws-packets-before-connack-close-the-connection", ["MQTT-3.1.4-5"],
    "AWS IoT Core: a client must wait for CONNACK; a SUBSCRIBE written together with the CONNECT closes the connection after the CONNACK.",
    [op(1), send(1, C("c"), SUB(1, ("pb/t", 0))), exp(1, CA(0)), closed(1)], profile=A)
vec("aws-will-at-qos2-closes-without-connack", ["MQTT-3.2.2-6"],
    "AWS IoT Core: a CONNECT with a QoS 2 will is closed without CONNACK.",
    [op(1), send(1, C("c", will=W("aw/t", "x", 2))), closed(1)], profile=A)
vec("aws-takeover-closes-the-older-connection", ["MQTT-3.1.4-2"],
    "AWS IoT Core: a second connection with the same client id is accepted and the older one is closed.",
    [conn(1, "t"), op(2), send(2, C("t")), exp(2, CA(0)), closed(1), send(2, PING), exp(2, PONG)], profile=A)


# AWS IoT Core as AWS documents it today (the aws-iot-2025 profile). Each vector names
# the AWS page its rule comes from in "source".
N = "aws-iot-2025"
AWS_DOC = "https://docs.aws.amazon.com/iot/latest/developerguide/"
MQTT_PAGE = AWS_DOC + "mqtt.html"
RESERVED = AWS_DOC + "reserved-topics.html"
INGEST = AWS_DOC + "iot-basic-ingest.html"
LIFECYCLE = AWS_DOC + "life-cycle-events.html"
QUOTAS = "https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits"
def anyp(topic, qos=0, var="p"):
    d = {"type": "PUBLISH", "topic": topic, "qos": qos, "payload_hex": "?" + var}
    if qos: d["packet_id"] = "?" + var + "id"
    return d
vec("aws2025-retained-message-goes-only-to-an-exact-filter", ["MQTT-3.3.1-6"],
    "AWS IoT Core today: a retained message is stored and sent on SUBSCRIBE to a filter naming its topic exactly, never to a wildcard filter.",
    [conn(1, "pub"), send(1, P("rx/t", 1, 1, "v1", retain=True)), exp(1, PA(1)),
     conn(2, "exact"), sub(2, 1, ("rx/t", 1)), exp(2, P("rx/t", 1, "?a", "v1", retain=True)),
     conn(3, "wild"), sub(3, 1, ("rx/+", 1), ("rx/#", 1)), nothing(3)], profile=N, source=MQTT_PAGE + "#mqtt-retain")
vec("aws2025-empty-retained-payload-deletes", ["MQTT-3.3.1-10", "MQTT-3.3.1-11"],
    "AWS IoT Core today: a retained PUBLISH with an empty payload deletes the retained message of its topic.",
    [conn(1, "pub"), send(1, P("rd/t", 1, 1, "v1", retain=True)), exp(1, PA(1)),
     send(1, P("rd/t", 1, 2, "", retain=True)), exp(1, PA(2)),
     conn(2, "exact"), sub(2, 1, ("rd/t", 1)), nothing(2)], profile=N, source=MQTT_PAGE + "#mqtt-retain")
vec("aws2025-retain-on-a-reserved-topic-closes-the-connection", ["MQTT-4.8.0-1"],
    "AWS IoT Core today: RETAIN=1 on a reserved ($) topic, even a Basic Ingest one, closes the connection.",
    [conn(1, "pub"), send(1, P("$aws/rules/r/t", 1, 1, "v", retain=True)), closed(1)],
    profile=N, prefixable=False, source=MQTT_PAGE + "#mqtt-retain")
vec("aws2025-shared-subscription-gives-each-message-to-one-member", [],
    "AWS IoT Core today: two members of $share/g/sh/t each get one of two messages, never both; a plain subscriber gets both.",
    [conn(1, "m1"), sub(1, 1, ("$share/g/sh/t", 0)), conn(2, "m2"), sub(2, 1, ("$share/g/sh/t", 0)),
     conn(3, "plain"), sub(3, 1, ("sh/t", 0)),
     conn(4, "pub"), send(4, P("sh/t", 0, None, "m1")), send(4, P("sh/t", 0, None, "m2")),
     exp(1, anyp("sh/t", var="a")), exp(2, anyp("sh/t", var="b")), distinct("a", "b"),
     exp(3, P("sh/t", payload="m1"), P("sh/t", payload="m2")), nothing(1), nothing(2)],
    profile=N, prefixable=False, source=MQTT_PAGE + "#mqtt5-shared-subscription")
vec("aws2025-shared-messages-wait-while-every-member-is-offline", ["MQTT-3.1.2-5"],
    "AWS IoT Core today: a QoS 1 message for a shared group whose only member (a persistent session) is offline is queued and delivered when it reconnects.",
    [conn(1, "m1", clean=False), sub(1, 1, ("$share/g/sq/t", 1)), close(1),
     conn(2, "pub"), send(2, P("sq/t", 1, 1, "held")), exp(2, PA(1)), adv(1000),
     conn(3, "m1", clean=False, sp=True), exp(3, P("sq/t", 1, "?a", "held"))],
    profile=N, prefixable=False, source=MQTT_PAGE + "#mqtt5-shared-subscription")
vec("aws2025-publish-to-an-unimplemented-reserved-topic-closes", ["MQTT-4.8.0-1"],
    "AWS IoT Core today: a PUBLISH to a reserved topic the broker does not implement ($aws/things/.../shadow/update here) closes the connection.",
    [conn(1, "c"), send(1, P("$aws/things/t/shadow/update", 1, 1, "{}")), closed(1)],
    profile=N, prefixable=False, source=RESERVED)
vec("aws2025-subscribe-to-an-unimplemented-reserved-topic-closes", ["MQTT-4.8.0-1"],
    "AWS IoT Core today: a SUBSCRIBE to a reserved filter the broker does not implement closes the connection without SUBACK.",
    [conn(1, "c"), send(1, SUB(1, ("$aws/things/t/#", 0))), closed(1)],
    profile=N, prefixable=False, source=RESERVED)
vec("aws2025-basic-ingest-prefix-is-outside-the-topic-limits", ["MQTT-4.8.0-1"],
    "AWS IoT Core today: $aws/rules/{rule}/ does not count toward the 7-slash limit: 7 slashes after it are accepted, 8 close the connection.",
    [conn(1, "c"), send(1, P("$aws/rules/r/a/b/c/d/e/f/g/h", 1, 1, "x")), exp(1, PA(1)),
     send(1, P("$aws/rules/r/a/b/c/d/e/f/g/h/i", 1, 2, "x")), closed(1)],
    profile=N, prefixable=False, source=INGEST)
vec("aws2025-publishes-over-100-per-second-are-discarded", ["MQTT-3.3.5-2"],
    "AWS IoT Core today: of 101 QoS 1 PUBLISH written at once, 100 are acknowledged and routed; the 101st is discarded (no PUBACK, not routed); a second later publishing works again. Timing: the 101 arrive within one second.",
    [conn(1, "s"), sub(1, 1, ("pr/t", 0)), conn(2, "p"),
     send(2, *[P("pr/t", 1, i, "x") for i in range(1, 102)]),
     exp(2, *[PA(i) for i in range(1, 101)]), exp(1, *[P("pr/t", payload="x")] * 100), nothing(2), nothing(1),
     adv(1000), send(2, P("pr/t", 1, 102, "y")), exp(2, PA(102))], profile=N, source=QUOTAS)
vec("aws2025-publish-bytes-over-512-kib-per-second-are-delayed", ["MQTT-3.3.5-2"],
    "AWS IoT Core today: of five 128 KiB PUBLISH written at once, the three within 512 KiB are acknowledged at once and the other two a second later. Timing: the five arrive within one second; the last two are acknowledged between 0.2 s and 2 s later.",
    [conn(1, "p"), send(1, *[P("pb/t", 1, i, rep("78", 131072)) for i in range(1, 6)]),
     exp(1, PA(1), PA(2), PA(3)), nothing(1), adv(1000), exp(1, PA(4), PA(5))], profile=N, source=QUOTAS)
vec("aws2025-one-connect-per-second-per-client-id", ["MQTT-3.1.4-2"],
    "AWS IoT Core today: a second CONNECT with the same client id within a second is closed without CONNACK and the first connection stays; a second later it takes over.",
    [conn(1, "cr"), op(2), send(2, C("cr")), closed(2), send(1, PING), exp(1, PONG),
     adv(1000), conn(3, "cr"), closed(1)], profile=N, source=QUOTAS)
vec("aws2025-at-most-eight-filters-per-subscribe", ["MQTT-3.8.4-1"],
    "AWS IoT Core today: in a SUBSCRIBE of 9 filters the ninth is refused with 0x80.",
    [conn(1, "c"), sub(1, 1, *[("f8/%d" % i, 1) for i in range(9)], codes=[1] * 8 + [128])], profile=N, source=QUOTAS)
vec("aws2025-at-most-fifty-subscriptions", ["MQTT-3.8.4-1"],
    "AWS IoT Core today: a connection holds at most 50 subscriptions; the 51st filter is refused.",
    [conn(1, "c")] + [sub(1, i + 1, *[("s50/%d/%d" % (i, j), 0) for j in range(5)]) for i in range(10)]
    + [sub(1, 11, ("s50/extra", 0), codes=[128])], profile=N, source=QUOTAS)
vec("aws2025-keep-alive-is-clamped-to-thirty-seconds", ["MQTT-3.1.2-24"],
    "AWS IoT Core today: a keep-alive of 5 s is treated as 30 s, so the connection is closed after 45 s of silence.",
    [conn(1, "c", ka=5), adv(44900), nothing(1), adv(100), closed(1)], profile=N, source=MQTT_PAGE)
vec("aws2025-persistent-session-expires-after-an-hour", ["MQTT-3.1.2-4"],
    "AWS IoT Core today: a persistent session is kept an hour after its connection ends (by default); after that the client starts afresh.",
    [conn(1, "px", clean=False), close(1), adv(3_599_000), conn(2, "px", clean=False, sp=True), close(2),
     adv(3_600_000), conn(3, "px", clean=False, sp=False)], profile=N, source=QUOTAS)
vec("aws2025-unacknowledged-qos1-is-resent-for-an-hour-then-dropped", [],
    "AWS IoT Core today: a QoS 1 message a persistent subscriber never acknowledges is resent when it resumes within the hour after the message was first sent (its id may change) and not once that hour has passed, even if it was resent meanwhile. Timing: the first resume 30 minutes after the first sending, the second an hour after it.",
    [conn(1, "qr", clean=False, ka=0), sub(1, 1, ("qr/t", 1)), conn(2, "pub"), send(2, P("qr/t", 1, 1, "m")), exp(2, PA(1)),
     exp(1, P("qr/t", 1, "?a", "m")), close(1), adv(1_800_000),
     conn(3, "qr", clean=False, sp=True, ka=0), exp(3, P("qr/t", 1, "?b", "m")), close(3), adv(1_800_000),
     conn(4, "qr", clean=False, sp=True, ka=0), nothing(4)], profile=N, source=QUOTAS)
vec("aws2025-qos1-retry-limit-is-configurable", [],
    "AWS IoT Core today, with the retry limit on unacknowledged QoS 1 messages set to 2 s (setup qos1_retry_ms): the message is resent on a resume 1 s after its first sending and not on one 2 s after it. Timing: the first resume between 0.5 s and 1.5 s after the first sending, the second at least 2 s after it.",
    [conn(1, "qs", clean=False, ka=0), sub(1, 1, ("qs/t", 1)), conn(2, "pub"), send(2, P("qs/t", 1, 1, "m")), exp(2, PA(1)),
     exp(1, P("qs/t", 1, "?a", "m")), close(1), adv(1000),
     conn(3, "qs", clean=False, sp=True, ka=0), exp(3, P("qs/t", 1, "?b", "m")), close(3), adv(1000),
     conn(4, "qs", clean=False, sp=True, ka=0), nothing(4)], profile=N, source=QUOTAS, setup={"qos1_retry_ms": 2000})
vec("aws2025-presence-events-announce-connect-and-disconnect", [],
    "AWS IoT Core today: a subscriber of $aws/events/presence/connected/{clientId} and .../disconnected/{clientId} gets one JSON message when that client connects and one when it disconnects.",
    [conn(1, "watcher"), sub(1, 1, ("$aws/events/presence/connected/lc-dev", 0), ("$aws/events/presence/disconnected/lc-dev", 0)),
     conn(2, "lc-dev"), exp(1, anyp("$aws/events/presence/connected/lc-dev", var="c")),
     send(2, DISC), closed(2), exp(1, anyp("$aws/events/presence/disconnected/lc-dev", var="d")), nothing(1)],
    profile=N, prefixable=False, source=LIFECYCLE)
vec("aws2025-subscription-events-announce-subscribe-and-unsubscribe", [],
    "AWS IoT Core today: a subscriber of $aws/events/subscriptions/+/{clientId} gets one JSON message for each SUBSCRIBE and UNSUBSCRIBE of that client.",
    [conn(1, "watcher"), sub(1, 1, ("$aws/events/subscriptions/+/ls-dev", 0)),
     conn(2, "ls-dev"), sub(2, 1, ("ls/a", 0)), exp(1, anyp("$aws/events/subscriptions/subscribed/ls-dev", var="s")),
     send(2, UNSUB(2, "ls/a")), exp(2, UA(2)), exp(1, anyp("$aws/events/subscriptions/unsubscribed/ls-dev", var="u")), nothing(1)],
    profile=N, prefixable=False, source=LIFECYCLE)
vec("shared-subscriptions-are-ordinary-filters-without-the-knob", ["MQTT-4.7.2-1"],
    "MQTT 3.1.1 (shared subscriptions off, the default): $share/g/t is an ordinary filter, so a message on t reaches no one and one on $share/g/t reaches the subscriber.",
    [conn(1, "m"), sub(1, 1, ("$share/g/t", 0)), conn(2, "pub"), send(2, P("t", payload="no")),
     send(2, P("$share/g/t", payload="yes")), exp(1, P("$share/g/t", payload="yes")), nothing(1)], prefixable=False,
    setup={"shared_subscriptions": False})


def render(v):
    v = dict(v)
    steps = v.pop("steps")
    head = json.dumps(v, ensure_ascii=False, indent=2)[:-2]
    lines = ",\n".join("    " + json.dumps(s, ensure_ascii=False, separators=(", ", ": ")) for s in steps)
    return head + ',\n  "steps": [\n' + lines + "\n  ]\n}\n"


def main():
    check = "--check" in sys.argv[1:]
    ids = [v["id"] for v in V]
    assert len(ids) == len(set(ids)), "duplicate ids"
    stale = []
    for v in V:
        text = render(v)
        path = os.path.join(OUT, v["id"] + ".json")
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
    existing = {f[:-5] for f in os.listdir(OUT) if f.endswith(".json")}
    extra = sorted(existing - set(ids))
    if check:
        stale += [os.path.join(OUT, f + ".json") for f in extra]
        if stale:
            print("out of date: " + ", ".join(stale), file=sys.stderr)
            sys.exit(1)
    else:
        for f in extra:
            os.remove(os.path.join(OUT, f + ".json"))
        print(f"{len(V)} vectors")


if __name__ == "__main__":
    main()
