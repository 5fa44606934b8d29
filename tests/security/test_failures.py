"""Fail-open checks: whatever goes wrong between nginx and trustd, a
request on a `zt on` location is never allowed without a decision."""

import signal
import struct
import time

import pytest

import ztwire

ALLOW = ztwire.answer


def _garbage(rid, fields):
    return b"\xff" * 64


def _truncated(rid, fields):
    return ALLOW(rid)[:10]


def _wrong_version(rid, fields):
    a = ALLOW(rid)
    return ztwire.frame(ztwire.DECIDE_RESP, rid, a[ztwire.HDR.size:],
                        version=ztwire.VERSION + 1)


def _wrong_id(rid, fields):
    return ALLOW(rid + 1)


def _oversized(rid, fields):
    return struct.pack(">I", 0x7fffffff) + ALLOW(rid)[4:]


def _unknown_decision(rid, fields):
    return ALLOW(rid, decision=99)


def _login_without_target(rid, fields):
    return ALLOW(rid, decision=ztwire.LOGIN, status=302)


def _deny_with_status_200(rid, fields):
    return ALLOW(rid, decision=ztwire.DENY, status=200)


def _request_type(rid, fields):
    return ztwire.request(rid)


def _silent(rid, fields):
    return None


ANSWERS = {
    "garbage": _garbage, "truncated frame": _truncated,
    "wrong protocol version": _wrong_version,
    "allow for another request id": _wrong_id,
    "oversized frame": _oversized, "unknown decision": _unknown_decision,
    "login without a target": _login_without_target,
    "deny claiming status 200": _deny_with_status_200,
    "a request frame instead of an answer": _request_type,
    "no answer (slow)": _silent,
}


@pytest.mark.parametrize("name", list(ANSWERS))
def test_a_broken_trustd_answer_never_allows(make_gateway, name):
    gw = make_gateway(fake_trustd=ANSWERS[name], timeout_ms=300)
    t0 = time.monotonic()

    r = gw.get("/secret")

    assert r.status != 200 and r.status < 600, r.status
    assert r.status in (403, 500, 502, 503), r.status
    assert time.monotonic() - t0 < 3.0
    assert b"x-zt-decision" not in r.body.lower()


def test_trustd_down_fails_closed(make_gateway):
    gw = make_gateway()
    dev = gw.issue_device("alice-laptop")
    gw.enroll(dev[0])
    assert gw.get("/x", cert=dev).status == 200

    gw.kill_trustd(signal.SIGKILL)

    assert gw.get("/x", cert=dev).status == 503


def test_trustd_stalled_fails_closed(make_gateway):
    gw = make_gateway(timeout_ms=300)
    dev = gw.issue_device("alice-laptop")
    gw.enroll(dev[0])
    gw.kill_trustd(signal.SIGSTOP)
    try:
        r = gw.get("/x", cert=dev)
    finally:
        gw.kill_trustd(signal.SIGCONT)

    assert r.status == 503
