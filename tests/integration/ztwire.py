"""The ztgate decision protocol (wire/zt_wire.h) in Python, for tests.

Tests use it to talk to trustd directly (protocol abuse, peer checks) and
to stand in for a misbehaving trustd (garbage answers, stalls).
"""

import struct

VERSION = 1
HDR = struct.Struct(">IBBHI")          # length, version, type, flags, id
MAX_FRAME = 65536

DECIDE_REQ, DECIDE_RESP = 1, 2

F_METHOD, F_SCHEME, F_HOST, F_PATH, F_QUERY, F_CLIENT_ADDR = 1, 2, 3, 4, 5, 6
F_CERT_FP, F_CERT_VERIFY, F_TOKEN, F_USER_AGENT = 7, 8, 9, 10
F_DECISION, F_STATUS, F_TTL, F_HEADER = 32, 33, 34, 35
F_REDIRECT, F_REASON_CODE, F_REASON = 36, 37, 38

CERT_NONE, CERT_SUCCESS, CERT_FAILED = 0, 1, 2
ALLOW, DENY, LOGIN, STEP_UP = 1, 2, 3, 4


def field(tag, value):
    if isinstance(value, str):
        value = value.encode()
    return struct.pack(">BH", tag, len(value)) + value


def frame(ftype, rid, body, version=VERSION, flags=0):
    return HDR.pack(len(body) + 8, version, ftype, flags, rid) + body


def request(rid, method="GET", scheme="https", host="app.example",
            path="/", client="127.0.0.1", fp=None, verify=None, query=None,
            token=None, user_agent=None):
    body = (field(F_METHOD, method) + field(F_SCHEME, scheme)
            + field(F_HOST, host) + field(F_PATH, path)
            + field(F_CLIENT_ADDR, client))
    if query:
        body += field(F_QUERY, query)
    if token:
        body += field(F_TOKEN, token)
    if user_agent:
        body += field(F_USER_AGENT, user_agent)
    if verify is None:
        verify = CERT_SUCCESS if fp else CERT_NONE
    body += field(F_CERT_VERIFY, bytes([verify]))
    if fp:
        body += field(F_CERT_FP, fp)
    return frame(DECIDE_REQ, rid, body)


def answer(rid, decision=ALLOW, status=200, ttl=0, headers=(), reason="",
           reason_code=0, redirect=""):
    body = (field(F_DECISION, bytes([decision]))
            + field(F_STATUS, struct.pack(">H", status))
            + field(F_TTL, struct.pack(">I", ttl))
            + field(F_REASON_CODE, struct.pack(">H", reason_code)))
    if reason:
        body += field(F_REASON, reason)
    if redirect:
        body += field(F_REDIRECT, redirect)
    for name, value in headers:
        name, value = name.encode(), value.encode()
        body += field(F_HEADER, struct.pack(">H", len(name)) + name + value)
    return frame(DECIDE_RESP, rid, body)


def parse_frames(buf):
    """Split buf into (frames, rest); each frame is (type, id, fields)."""
    out = []
    while len(buf) >= HDR.size:
        length, version, ftype, flags, rid = HDR.unpack_from(buf)
        if version != VERSION or length + 4 > MAX_FRAME:
            raise ValueError("bad frame header")
        if len(buf) < length + 4:
            break
        body = buf[HDR.size:length + 4]
        fields = []
        p = 0
        while p < len(body):
            tag, flen = struct.unpack_from(">BH", body, p)
            fields.append((tag, body[p + 3:p + 3 + flen]))
            p += 3 + flen
        out.append((ftype, rid, fields))
        buf = buf[length + 4:]
    return out, buf


def decode_answer(fields):
    """Turn an answer's fields into a dict."""
    a = {"headers": []}
    for tag, v in fields:
        if tag == F_DECISION:
            a["decision"] = v[0]
        elif tag == F_STATUS:
            a["status"] = struct.unpack(">H", v)[0]
        elif tag == F_TTL:
            a["ttl"] = struct.unpack(">I", v)[0]
        elif tag == F_REASON_CODE:
            a["reason_code"] = struct.unpack(">H", v)[0]
        elif tag == F_REASON:
            a["reason"] = v.decode()
        elif tag == F_REDIRECT:
            a["redirect"] = v.decode()
        elif tag == F_HEADER:
            n = struct.unpack(">H", v[:2])[0]
            a["headers"].append((v[2:2 + n].decode(), v[2 + n:].decode()))
    return a
