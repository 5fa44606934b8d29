#!/usr/bin/env python3
"""Write the seed corpus for the wire fuzz targets.

    gen_corpus.py [CORPUS_DIR]     (default: tests/fuzz/corpus)

The frames are built here, independently of zt_wire.c, from the layout in
wire/zt_wire.h, so a seed that the codec refuses is a finding and not an
echo of the encoder.  Output is deterministic: rerunning it rewrites the
same files.  Inputs that libFuzzer merged in (fuzz-long, named by their
SHA-1) are left alone.
"""

import os
import struct
import sys

VERSION = 1
REQ, RESP = 1, 2
MAX_FRAME = 65536
MAX_HEADERS = 16

F_METHOD, F_SCHEME, F_HOST, F_PATH, F_QUERY = 1, 2, 3, 4, 5
F_CLIENT_ADDR, F_CERT_FP, F_CERT_VERIFY, F_TOKEN, F_USER_AGENT = \
    6, 7, 8, 9, 10
F_DECISION, F_STATUS, F_TTL, F_HEADER = 32, 33, 34, 35
F_REDIRECT, F_REASON_CODE, F_REASON = 36, 37, 38

ALLOW, DENY, LOGIN, STEP_UP = 1, 2, 3, 4
CERT_NONE, CERT_SUCCESS, CERT_FAILED = 0, 1, 2

FP = bytes(range(0xa0, 0xa0 + 32))


def field(tag, value):
    if isinstance(value, str):
        value = value.encode()
    return struct.pack(">BH", tag, len(value)) + value


def header(name, value):
    name, value = name.encode(), value.encode()
    return field(F_HEADER, struct.pack(">H", len(name)) + name + value)


def frame(ftype, fid, body, version=VERSION, flags=0, length=None):
    if length is None:
        length = 8 + len(body)
    return struct.pack(">IBBHI", length, version, ftype, flags, fid) + body


def req_fields(**over):
    """Required request fields, in the encoder's order."""
    f = [(F_METHOD, "GET"), (F_SCHEME, "https"),
         (F_HOST, "app.example.internal"), (F_PATH, "/dashboard"),
         (F_CLIENT_ADDR, "192.0.2.10")]
    return b"".join(field(t, over.get(str(t), v)) for t, v in f)


def req_full():
    return (req_fields()
            + field(F_QUERY, "tab=1&sort=desc")
            + field(F_TOKEN, "zt1.eyJzdWIiOiJhbGljZSJ9.c2ln")
            + field(F_USER_AGENT, "Mozilla/5.0 (X11; Linux x86_64)")
            + field(F_CERT_VERIFY, bytes([CERT_SUCCESS]))
            + field(F_CERT_FP, FP))


def resp_min(decision=ALLOW, status=200):
    return (field(F_DECISION, bytes([decision]))
            + field(F_STATUS, struct.pack(">H", status)))


def resp_full():
    return (resp_min()
            + field(F_TTL, struct.pack(">I", 30000))
            + field(F_REASON_CODE, struct.pack(">H", 1))
            + field(F_REASON, "device ok\tposture fresh")
            + header("X-ZT-User", "alice@example.com")
            + header("X-ZT-Device", "d-7f3a9c")
            + header("X-ZT-Groups", "eng, ops"))


def req_seeds():
    s = {}
    s["valid-min"] = frame(REQ, 1, req_fields())
    s["valid-full"] = frame(REQ, 2, req_full())
    s["valid-cert-failed"] = frame(
        REQ, 3, req_fields() + field(F_CERT_VERIFY, bytes([CERT_FAILED]))
        + field(F_CERT_FP, FP))
    s["valid-verify-no-fp"] = frame(
        REQ, 4, req_fields() + field(F_CERT_VERIFY, bytes([CERT_NONE])))
    s["valid-fields-reordered"] = frame(
        REQ, 5, field(F_CERT_FP, FP) + field(F_CLIENT_ADDR, "2001:db8::1")
        + field(F_PATH, "/") + field(F_CERT_VERIFY, bytes([CERT_SUCCESS]))
        + field(F_HOST, "h") + field(F_SCHEME, "http")
        + field(F_METHOD, "POST"))
    s["valid-empty-strings"] = frame(
        REQ, 6, field(F_METHOD, "") + field(F_SCHEME, "") + field(F_HOST, "")
        + field(F_PATH, "") + field(F_CLIENT_ADDR, "") + field(F_QUERY, "")
        + field(F_TOKEN, ""))
    s["valid-id-zero"] = frame(REQ, 0, req_fields())
    s["valid-id-max"] = frame(REQ, 0xffffffff, req_full())
    s["valid-binary-path"] = frame(
        REQ, 7, req_fields(**{str(F_PATH): "/a\r\nb\x00c\xff"}))
    # a frame of exactly WIRE_MAX_FRAME bytes with no verify result: the
    # encoder adds one, so re-encoding must refuse it as too big
    pad = MAX_FRAME - 12 - len(req_fields()) - 3
    s["valid-max-frame"] = frame(REQ, 8, req_fields() + field(F_TOKEN,
                                                              "t" * pad))
    s["pipelined-3"] = (frame(REQ, 10, req_fields())
                        + frame(REQ, 11, req_full())
                        + frame(REQ, 12, req_fields()))
    s["pipelined-then-partial"] = (frame(REQ, 13, req_full())
                                   + frame(REQ, 14, req_full())[:20])
    s["pipelined-bad-then-good"] = (frame(REQ, 15, field(F_METHOD, "GET"))
                                    + frame(REQ, 16, req_fields()))
    full = frame(REQ, 17, req_full())
    s["truncated-header"] = full[:3]
    s["truncated-version"] = full[:5]
    s["truncated-body"] = full[:len(full) - 1]
    s["len-too-big"] = frame(REQ, 18, req_fields(), length=MAX_FRAME - 3)
    s["len-huge"] = struct.pack(">I", 0xffffffff)
    s["len-too-small"] = frame(REQ, 19, b"", length=7)
    s["wrong-version"] = frame(REQ, 20, req_fields(), version=2)
    s["wrong-version-5-bytes"] = frame(REQ, 20, req_fields(), version=0)[:5]
    s["flags-set"] = frame(REQ, 21, req_fields(), flags=0x8000)
    s["type-resp"] = frame(RESP, 22, resp_min())
    s["type-unknown"] = frame(7, 23, req_fields())
    s["missing-method"] = frame(REQ, 24, req_fields()[len(field(1, "GET")):])
    s["missing-client-addr"] = frame(
        REQ, 25, field(F_METHOD, "GET") + field(F_SCHEME, "https")
        + field(F_HOST, "h") + field(F_PATH, "/"))
    s["dup-host"] = frame(REQ, 26, req_fields() + field(F_HOST, "evil"))
    s["dup-cert-fp"] = frame(REQ, 27, req_full() + field(F_CERT_FP, FP))
    s["dup-cert-verify"] = frame(
        REQ, 28, req_full() + field(F_CERT_VERIFY, bytes([CERT_FAILED])))
    s["unknown-tag"] = frame(REQ, 29, req_fields() + field(11, "x"))
    s["resp-tag-in-req"] = frame(REQ, 30, req_fields() + field(F_STATUS,
                                                              b"\x00\xc8"))
    s["field-past-end"] = frame(
        REQ, 31, req_fields() + struct.pack(">BH", F_QUERY, 100) + b"abc")
    s["field-header-cut"] = frame(REQ, 32, req_fields() + b"\x05\x00")
    s["cert-fp-short"] = frame(
        REQ, 33, req_fields() + field(F_CERT_VERIFY, bytes([CERT_SUCCESS]))
        + field(F_CERT_FP, FP[:31]))
    s["cert-fp-no-verify"] = frame(REQ, 34, req_fields()
                                   + field(F_CERT_FP, FP))
    s["cert-fp-verify-none"] = frame(
        REQ, 35, req_fields() + field(F_CERT_VERIFY, bytes([CERT_NONE]))
        + field(F_CERT_FP, FP))
    s["cert-verify-bad"] = frame(REQ, 36, req_fields()
                                 + field(F_CERT_VERIFY, b"\x03"))
    s["cert-verify-long"] = frame(REQ, 37, req_fields()
                                  + field(F_CERT_VERIFY, b"\x01\x01"))
    s["empty"] = b""
    return s


def resp_seeds():
    s = {}
    s["valid-min"] = frame(RESP, 1, resp_min())
    s["valid-full"] = frame(RESP, 2, resp_full())
    s["valid-deny"] = frame(
        RESP, 3, resp_min(DENY, 403)
        + field(F_REASON_CODE, struct.pack(">H", 5))
        + field(F_REASON, "device revoked"))
    s["valid-login"] = frame(
        RESP, 4, resp_min(LOGIN, 302)
        + field(F_REDIRECT, "https://login.example.internal/?r=%2Fdash")
        + field(F_TTL, b"\x00\x00\x00\x00"))
    s["valid-step-up"] = frame(
        RESP, 5, resp_min(STEP_UP, 401)
        + field(F_REDIRECT, "/.zt/step-up"))
    s["valid-max-headers"] = frame(
        RESP, 6, resp_min() + b"".join(header("X-H%d" % i, "v%d" % i)
                                       for i in range(MAX_HEADERS)))
    s["valid-header-empty-value"] = frame(RESP, 7, resp_min()
                                          + header("X-Empty", ""))
    s["valid-header-token-chars"] = frame(
        RESP, 8, resp_min() + header("!#$%&'*+-.^_`|~09azAZ", "v\tw"))
    s["valid-status-bounds"] = (frame(RESP, 9, resp_min(DENY, 100))
                                + frame(RESP, 10, resp_min(DENY, 599)))
    s["valid-id-max"] = frame(RESP, 0xffffffff, resp_full())
    s["valid-unknown-reason-code"] = frame(
        RESP, 11, resp_min() + field(F_REASON_CODE, b"\xff\xff"))
    # exactly WIRE_MAX_FRAME bytes without ttl and reason code: the
    # encoder adds both, so re-encoding must refuse it as too big
    pad = MAX_FRAME - 12 - len(resp_min()) - 3
    s["valid-max-frame"] = frame(RESP, 12, resp_min()
                                 + field(F_REASON, "r" * pad))
    s["pipelined-3"] = (frame(RESP, 20, resp_full())
                        + frame(RESP, 19, resp_min(DENY, 403))
                        + frame(RESP, 21, resp_min()))
    s["pipelined-then-partial"] = (frame(RESP, 22, resp_min())
                                   + frame(RESP, 23, resp_full())[:30])
    s["pipelined-bad-then-good"] = (frame(RESP, 24, field(F_STATUS, b"\0\0"))
                                    + frame(RESP, 25, resp_full()))
    full = frame(RESP, 26, resp_full())
    s["truncated-header"] = full[:11]
    s["truncated-body"] = full[:len(full) - 1]
    s["len-too-big"] = frame(RESP, 27, resp_min(), length=MAX_FRAME - 3)
    s["len-huge"] = b"\xff\xff\xff\xff\x01\x02"
    s["len-too-small"] = frame(RESP, 28, b"", length=0)
    s["wrong-version"] = frame(RESP, 29, resp_min(), version=0xff)
    s["flags-set"] = frame(RESP, 30, resp_min(), flags=1)
    s["type-req"] = frame(REQ, 31, req_fields())
    s["type-unknown"] = frame(0, 32, resp_min())
    s["missing-decision"] = frame(RESP, 33, field(F_STATUS, b"\x00\xc8"))
    s["missing-status"] = frame(RESP, 34, field(F_DECISION, b"\x01"))
    s["dup-decision"] = frame(RESP, 35, resp_min()
                              + field(F_DECISION, b"\x02"))
    s["dup-redirect"] = frame(RESP, 36, resp_min() + field(F_REDIRECT, "/a")
                              + field(F_REDIRECT, "/b"))
    s["unknown-tag"] = frame(RESP, 37, resp_min() + field(39, "x"))
    s["req-tag-in-resp"] = frame(RESP, 38, resp_min() + field(F_HOST, "h"))
    s["decision-zero"] = frame(RESP, 39, resp_min(0))
    s["decision-5"] = frame(RESP, 40, resp_min(5))
    s["status-99"] = frame(RESP, 41, resp_min(DENY, 99))
    s["status-600"] = frame(RESP, 42, resp_min(DENY, 600))
    s["ttl-short"] = frame(RESP, 43, resp_min() + field(F_TTL, b"\0\0\1"))
    s["too-many-headers"] = frame(
        RESP, 44, resp_min() + b"".join(header("X-H%d" % i, "v")
                                        for i in range(MAX_HEADERS + 1)))
    s["header-name-space"] = frame(RESP, 45, resp_min()
                                   + header("X Bad", "v"))
    s["header-name-cr"] = frame(RESP, 46, resp_min()
                                + header("X-Bad\r", "v"))
    s["header-name-empty"] = frame(RESP, 47, resp_min() + header("", "v"))
    s["header-name-colon"] = frame(RESP, 48, resp_min()
                                   + header("X-A:", "v"))
    s["header-value-crlf"] = frame(
        RESP, 49, resp_min() + header("X-A", "v\r\nSet-Cookie: s=1"))
    s["header-value-nul"] = frame(RESP, 50, resp_min()
                                  + header("X-A", "a\x00b"))
    s["header-name-len-past-value"] = frame(
        RESP, 51, resp_min() + field(F_HEADER, b"\x00\x09X-A"))
    s["header-too-short"] = frame(RESP, 52, resp_min()
                                  + field(F_HEADER, b"\x00"))
    s["reason-lf"] = frame(RESP, 53, resp_min() + field(F_REASON, "a\nb"))
    s["redirect-cr"] = frame(RESP, 54, resp_min()
                             + field(F_REDIRECT, "/x\rLocation: /y"))
    s["redirect-del"] = frame(RESP, 55, resp_min()
                              + field(F_REDIRECT, "/x\x7f"))
    s["field-past-end"] = frame(
        RESP, 56, resp_min() + struct.pack(">BH", F_REASON, 0xffff) + b"r")
    s["field-header-cut"] = frame(RESP, 57, resp_min() + b"\x26")
    s["empty"] = b""
    return s


def write(corpus, target, seeds):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    for name, data in sorted(seeds.items()):
        with open(os.path.join(d, "seed-" + name), "wb") as fp:
            fp.write(data)
    print("%s: %d seeds in %s" % (target, len(seeds), d))


def main():
    corpus = sys.argv[1] if len(sys.argv) > 1 else "tests/fuzz/corpus"
    write(corpus, "fuzz_wire_req", req_seeds())
    write(corpus, "fuzz_wire_resp", resp_seeds())


if __name__ == "__main__":
    main()
