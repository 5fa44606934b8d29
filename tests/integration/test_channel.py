"""The module against a misbehaving trustd: garbage, hostile answers,
out-of-order answers, redirects.  A Python stand-in plays trustd."""

import struct
import threading

import ztwire


def allow(rid, fields, headers=(("X-ZT-User", "alice"),)):
    return ztwire.answer(rid, ztwire.ALLOW, 200, headers=headers)


def test_garbage_from_trustd_fails_closed_and_is_logged(make_gateway):
    gw = make_gateway(fake_trustd=lambda rid, f: b"\x00\x00\x00\x09garbage!!")

    assert gw.get("/").status == 503
    assert "invalid answer from trustd" in gw.error_log()


def test_oversized_frame_length_from_trustd_fails_closed(make_gateway):
    gw = make_gateway(
        fake_trustd=lambda rid, f: struct.pack(">I", 1 << 30) + b"x" * 64)

    assert gw.get("/").status == 503
    assert "frame exceeds maximum size" in gw.error_log()


def test_header_injection_in_answer_is_refused(make_gateway):
    def evil(rid, fields):
        # a CR LF inside a header value must never be emitted
        name = b"X-ZT-User"
        value = b"alice\r\nX-Admin: 1"
        body = (ztwire.field(ztwire.F_DECISION, bytes([ztwire.ALLOW]))
                + ztwire.field(ztwire.F_STATUS, struct.pack(">H", 200))
                + ztwire.field(ztwire.F_HEADER, struct.pack(">H", len(name))
                               + name + value))
        return ztwire.frame(ztwire.DECIDE_RESP, rid, body)

    gw = make_gateway(fake_trustd=evil)

    assert gw.get("/").status == 503


def test_answer_with_unknown_id_is_ignored_and_request_times_out(
        make_gateway):
    gw = make_gateway(timeout_ms=300,
                      fake_trustd=lambda rid, f: allow(rid ^ 0xffff, f))

    assert gw.get("/").status == 503
    assert "did not answer in time" in gw.error_log()


def test_login_decision_redirects_to_the_portal(make_gateway):
    gw = make_gateway(fake_trustd=lambda rid, f: ztwire.answer(
        rid, ztwire.LOGIN, 302, redirect="https://localhost/zt/login?r=%2F"))

    r = gw.get("/")

    assert r.status == 302
    assert r.headers["Location"] == "https://localhost/zt/login?r=%2F"


def test_redirect_decision_without_target_fails_closed(make_gateway):
    gw = make_gateway(
        fake_trustd=lambda rid, f: ztwire.answer(rid, ztwire.STEP_UP, 302))

    assert gw.get("/").status == 503


def test_deny_status_and_reason_from_trustd_are_applied(make_gateway):
    gw = make_gateway(fake_trustd=lambda rid, f: ztwire.answer(
        rid, ztwire.DENY, 451, reason="blocked by test"))

    assert gw.get("/").status == 451
    assert "blocked by test" in gw.error_log()


def test_answers_out_of_order_reach_the_right_requests(make_gateway):
    """Hold every answer until two requests are waiting, then answer the
    second first: each request must get the answer carrying its own id."""
    held = []

    def reorder(rid, fields):
        path = dict(fields)[ztwire.F_PATH].decode()
        held.append(ztwire.answer(rid, ztwire.ALLOW, 200,
                                  headers=[("X-ZT-Path", path)]))
        if len(held) == 2:
            out = held[1] + held[0]
            held.clear()
            return out
        return None

    # one worker: both requests share one channel
    gw = make_gateway(fake_trustd=reorder, timeout_ms=3000, workers=1)
    results = {}

    def fetch(p):
        results[p] = gw.get(p)

    ts = [threading.Thread(target=fetch, args=(p,)) for p in ("/a", "/b")]
    for t in ts:
        t.start()
    for t in ts:
        t.join()

    for p in ("/a", "/b"):
        assert results[p].status == 200
        assert results[p].upstream_header("X-ZT-Path") == [p]


def test_module_sends_the_normalized_path_and_request_facts(make_gateway):
    seen = []

    def record(rid, fields):
        seen.append(dict(fields))
        return allow(rid, fields)

    gw = make_gateway(fake_trustd=record)

    assert gw.get("/a/./b/../c//d%41?q=1",
                  headers={"User-Agent": "probe/1"}).status == 200

    f = seen[-1]
    assert f[ztwire.F_PATH] == b"/a/c/dA"
    assert f[ztwire.F_QUERY] == b"q=1"
    assert f[ztwire.F_METHOD] == b"GET"
    assert f[ztwire.F_SCHEME] == b"https"
    assert f[ztwire.F_HOST] == b"localhost"
    assert f[ztwire.F_CLIENT_ADDR] == b"127.0.0.1"
    assert f[ztwire.F_USER_AGENT] == b"probe/1"
    assert f[ztwire.F_CERT_VERIFY] == bytes([ztwire.CERT_NONE])
    assert ztwire.F_CERT_FP not in f


def test_session_cookie_travels_to_trustd_as_the_token(make_gateway):
    seen = []

    def record(rid, fields):
        seen.append(dict(fields))
        return allow(rid, fields)

    gw = make_gateway(fake_trustd=record)

    gw.get("/", headers={"Cookie": "a=1; __Host-zt_session=tok.en.sig; b=2"})
    gw.get("/")

    assert seen[0][ztwire.F_TOKEN] == b"tok.en.sig"
    assert ztwire.F_TOKEN not in seen[1]


def test_session_cookie_never_reaches_the_upstream(make_gateway):
    gw = make_gateway(fake_trustd=allow)

    r = gw.get("/", headers={"Cookie": "a=1;__Host-zt_session=secret.tok;b=2"})
    only = gw.get("/", headers={"Cookie": "__Host-zt_session=secret.tok"})

    assert r.upstream_header("Cookie") == ["a=1; b=2"]
    assert only.upstream_header("Cookie") == []


def test_zt_uri_gives_the_upstream_exactly_the_decided_path(make_gateway):
    seen = []

    def record(rid, fields):
        seen.append(dict(fields)[ztwire.F_PATH])
        return allow(rid, fields)

    gw = make_gateway(fake_trustd=record,
                      extra_loc="location /n/ { zt on; "
                                "proxy_pass http://app$zt_uri$is_args$args; }")

    r = gw.get("/n/a/./b/../%2e%2e/c%20d%2Fe?q=%2F1")

    assert r.status == 200
    decided = seen[-1].decode()
    assert decided == "/n/c d/e"
    assert r.json()["path"] == "/n/c%20d/e?q=%2F1"
