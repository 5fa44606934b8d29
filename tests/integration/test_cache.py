"""The decision cache in nginx shared memory (issue 7)."""

import time

from conftest import wait_for

CACHE = "zt_cache_zone 1m max_ttl=2s;"


def logged(gw, n):
    """The access log once it has n lines (nginx logs after answering)."""
    wait_for(lambda: len(gw.access_log().splitlines()) >= n, timeout=5,
             what="%d access log lines" % n)
    return gw.access_log()


def decisions(gw, path):
    """How many decisions trustd made for this path."""
    return sum(1 for l in gw.trustd_log().splitlines()
               if "decision:" in l and " %s " % path in l)


def test_a_cached_allow_is_served_without_asking_trustd(make_gateway):
    gw = make_gateway(cache=CACHE)
    dev = gw.issue_device("laptop")
    gw.enroll(dev[0])
    conn = gw.connect(dev)

    for _ in range(20):
        r = gw.get("/same", conn=conn)
        assert r.status == 200
        assert r.upstream_header("X-ZT-Device-Owner") == ["alice"]
    conn.close()

    assert decisions(gw, "/same") == 1
    log = logged(gw, 20)
    assert log.count('"GET /same HTTP/1.1" 200 allow HIT') == 19
    assert log.count('"GET /same HTTP/1.1" 200 allow MISS') == 1


def test_the_cache_key_separates_devices_paths_and_sessions(make_gateway):
    gw = make_gateway(cache=CACHE)
    a = gw.issue_device("a")
    gw.enroll(a[0], owner="alice")
    b = gw.issue_device("b")
    gw.enroll(b[0], owner="bob")

    assert gw.get("/x", cert=a).upstream_header("X-ZT-Device-Owner") == \
        ["alice"]
    assert gw.get("/x", cert=b).upstream_header("X-ZT-Device-Owner") == \
        ["bob"]
    assert gw.get("/x").status == 403
    assert gw.get("/x", cert=a, headers={
        "Cookie": "__Host-zt_session=other"}).status == 200
    assert decisions(gw, "/x") == 4


def test_a_revoked_device_stops_working_within_the_cap(make_gateway):
    gw = make_gateway(cache=CACHE)
    dev = gw.issue_device("laptop")
    gw.enroll(dev[0])
    assert gw.get("/r", cert=dev).status == 200
    assert gw.get("/r", cert=dev).status == 200     # from the cache

    t0 = time.monotonic()
    gw.ztctl("device", "revoke", gw.fingerprint(dev[0]))
    wait_for(lambda: gw.get("/r", cert=dev).status == 403, timeout=5,
             what="revocation to take effect")

    assert time.monotonic() - t0 <= 2.5


def test_a_zero_ttl_decision_is_never_cached(make_gateway):
    gw = make_gateway(cache=CACHE)

    for _ in range(10):
        assert gw.get("/denied").status == 403

    assert decisions(gw, "/denied") == 10
    assert "HIT" not in logged(gw, 10)


def test_a_full_zone_evicts_the_oldest_without_errors(make_gateway):
    gw = make_gateway(cache="zt_cache_zone 32k max_ttl=30s;",
                      trustd_extra="allow_ttl 30s")
    dev = gw.issue_device("laptop")
    gw.enroll(dev[0])
    conn = gw.connect(dev)

    for i in range(600):
        assert gw.get("/fill/%d" % i, conn=conn).status == 200

    # the newest are still cached, the oldest were evicted
    assert gw.get("/fill/599", conn=conn).status == 200
    assert gw.get("/fill/0", conn=conn).status == 200
    conn.close()
    log = logged(gw, 602)
    assert '"GET /fill/599 HTTP/1.1" 200 allow HIT' in log
    assert log.count('"GET /fill/0 HTTP/1.1" 200 allow MISS') == 2
    assert "zt_cache_zone" not in gw.error_log()
