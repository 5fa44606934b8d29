"""The module's Prometheus metrics (issue 9): counters in shared memory that
add up over all workers, printed by a "zt_metrics;" location."""

import math
import os
import re
import signal
import threading
import time

import pytest

import ztwire
from conftest import NGINX, run, wait_for

METRICS_PATH = "/zt-metrics"

# nested in the harness's "location / { zt on; ... }": the metrics location
# turns zt off and is limited to the loopback address instead
METRICS_LOC = """
            location = %s {
                zt off;
                allow 127.0.0.1;
                deny all;
                zt_metrics;
            }""" % METRICS_PATH

CONTENT_TYPE = "text/plain; version=0.0.4"

FAMILIES = {
    "ztgate_module_requests_total": "counter",
    "ztgate_module_failure_mode_total": "counter",
    "ztgate_module_ambiguous_paths_total": "counter",
    "ztgate_module_cache_hits_total": "counter",
    "ztgate_module_cache_misses_total": "counter",
    "ztgate_module_cache_expired_total": "counter",
    "ztgate_module_cache_evictions_total": "counter",
    "ztgate_module_cache_stores_total": "counter",
    "ztgate_module_cache_entries": "gauge",
    "ztgate_module_trustd_requests_total": "counter",
    "ztgate_module_trustd_requests_in_flight": "gauge",
    "ztgate_module_trustd_connections": "gauge",
    "ztgate_module_trustd_connects_total": "counter",
    "ztgate_module_trustd_connect_errors_total": "counter",
    "ztgate_module_trustd_reconnects_total": "counter",
    "ztgate_module_trustd_disconnects_total": "counter",
    "ztgate_module_trustd_timeouts_total": "counter",
    "ztgate_module_trustd_stalls_total": "counter",
    "ztgate_module_trustd_protocol_errors_total": "counter",
}


# --- a strict parser for the Prometheus text format, version 0.0.4 ----------

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
VALUE = re.compile(r"([+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[+-]Inf|NaN)\Z")
SAMPLE = re.compile(r"([^ {]+)(\{[^\n]*\})? ([^ ]+)( -?\d+)?\Z")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class Metrics:
    """A parsed exposition: types, helps and samples by (name, labels)."""

    def __init__(self):
        self.types = {}
        self.helps = {}
        self.samples = {}

    def get(self, name, **labels):
        return self.samples[(name, frozenset(labels.items()))]


def parse_labels(text):
    """'{a="x",b="y\\"z"}' -> {"a": "x", "b": 'y"z'}; strict escapes."""
    assert text[0] == "{" and text[-1] == "}", text
    labels, p, body = {}, 0, text[1:-1]
    while p < len(body):
        eq = body.index("=", p)
        name = body[p:eq]
        assert LABEL_NAME.match(name) and not name.startswith("__"), name
        assert body[eq + 1] == '"', "label value not quoted: " + text
        p, value = eq + 2, ""
        while body[p] != '"':
            if body[p] == "\\":
                esc = body[p + 1]
                assert esc in '\\"n', "bad escape in " + text
                value += "\n" if esc == "n" else esc
                p += 2
            else:
                value += body[p]
                p += 1
        p += 1
        assert name not in labels, "duplicate label " + name
        labels[name] = value
        if p < len(body):
            assert body[p] == ",", "expected ',' in " + text
            p += 1
    return labels


def family_of(name, types):
    """The declared family a sample name belongs to, or None."""
    if types.get(name) in ("counter", "gauge", "untyped", "summary"):
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[:-len(suffix)]
        if name.endswith(suffix) and types.get(base) in ("histogram",
                                                        "summary"):
            return base
    return None


def parse_prometheus(text):
    """Parse text strictly: every line well-formed, every sample after its
    family's TYPE, families contiguous, no duplicate series, values numeric,
    counters non-negative.  Stricter than Prometheus in refusing blank lines
    and samples of undeclared families."""
    m = Metrics()
    assert text.endswith("\n"), "exposition must end with a newline"
    done, current = set(), None

    for line in text[:-1].split("\n"):
        assert line, "blank line"
        assert "\r" not in line and "\t" not in line, repr(line)

        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, rest = line[2:6], line[7:]
            name, sep, arg = rest.partition(" ")
            assert METRIC_NAME.match(name), "bad metric name %r" % name
            assert sep and arg, "empty %s for %s" % (kind, name)
            if kind == "TYPE":
                assert arg in TYPES, "bad type %r" % arg
                assert name not in m.types, "second TYPE for " + name
                assert name not in done, "%s declared after its samples" % name
                m.types[name] = arg
            else:
                assert name not in m.helps, "second HELP for " + name
                assert not re.search(r"\\[^\\n]", arg), "bad escape in HELP"
                m.helps[name] = arg
            if current != name:
                if current is not None:
                    done.add(current)
                assert name not in done, name + " is not contiguous"
                current = name
            continue

        if line.startswith("#"):
            continue

        s = SAMPLE.match(line)
        assert s, "malformed sample line %r" % line
        name, labels, value = s.group(1), s.group(2), s.group(3)
        assert METRIC_NAME.match(name), "bad metric name %r" % name
        fam = family_of(name, m.types)
        assert fam is not None, "sample %s has no preceding TYPE" % name
        assert fam == current, "%s is outside its family's block" % name
        assert VALUE.match(value), "value %r of %s is not a number" % (
            value, name)
        v = float(value)
        if m.types[fam] == "counter":
            assert not math.isnan(v) and v >= 0, "counter %s is %s" % (
                name, value)
        key = (name, frozenset(parse_labels(labels).items()
                               if labels else ()))
        assert key not in m.samples, "duplicate series %s%s" % (
            name, labels or "")
        m.samples[key] = v

    return m


def test_the_parser_refuses_what_prometheus_would_not_read():
    good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 3\n"
    assert parse_prometheus(good).get("a_total", x="1") == 3
    for bad in ("a_total 1\n",                                  # no TYPE
                "# TYPE a_total counter\na_total one\n",        # value
                "# TYPE a_total counter\na_total 1",            # no newline
                "# TYPE a_total counter\na_total -1\n",         # negative
                "# TYPE a counter\n# TYPE a gauge\na 1\n",      # two TYPEs
                "# TYPE 1a gauge\n1a 1\n",                      # name
                "# TYPE a gauge\na{x=1} 1\n",                   # unquoted
                "# TYPE a gauge\na{x=\"1\"} 1\na{x=\"1\"} 2\n",  # duplicate
                "# TYPE a gauge\n# TYPE b gauge\nb 1\na 1\n",   # split
                "# TYPE a gauge\n\na 1\n"):                     # blank
        with pytest.raises(AssertionError):
            parse_prometheus(bad)


# --- helpers ----------------------------------------------------------------

def scrape(gw):
    r = gw.get(METRICS_PATH)
    assert r.status == 200, r.body
    assert r.headers["Content-Type"] == CONTENT_TYPE
    return parse_prometheus(r.body.decode())


def requests(m, decision):
    return m.get("ztgate_module_requests_total", decision=decision)


def failures(m, mode):
    return m.get("ztgate_module_failure_mode_total", mode=mode)


def one(m, name):
    return m.get("ztgate_module_" + name)


def enrolled(gw):
    dev = gw.issue_device("laptop")
    gw.enroll(dev[0])
    return dev


def error_lines(gw, text):
    return [l for l in gw.error_log().splitlines() if text in l]


# --- the tests -------------------------------------------------------------

def test_metrics_are_prometheus_text_with_every_family_at_zero(make_gateway):
    gw = make_gateway(extra_loc=METRICS_LOC)

    m = scrape(gw)

    assert m.types == FAMILIES
    assert set(m.helps) == set(FAMILIES)
    assert {k[0] for k in m.samples} == set(FAMILIES)
    assert all(v == 0 for v in m.samples.values())
    for name, kind in FAMILIES.items():
        assert name.endswith("_total") == (kind == "counter"), name
    assert {dict(k[1])["decision"] for k in m.samples
            if k[0] == "ztgate_module_requests_total"} == \
        {"allow", "deny", "login", "stepup", "error"}
    assert {dict(k[1])["mode"] for k in m.samples
            if k[0] == "ztgate_module_failure_mode_total"} == \
        {"closed", "open"}


def test_the_metrics_location_answers_get_and_head_only(make_gateway):
    gw = make_gateway(extra_loc=METRICS_LOC)

    head = gw.get(METRICS_PATH, method="HEAD")
    post = gw.get(METRICS_PATH, method="POST")

    assert head.status == 200 and head.body == b""
    assert int(head.headers["Content-Length"]) > 0
    assert post.status == 405


def test_allows_and_denies_add_up_over_all_workers(make_gateway):
    gw = make_gateway(extra_loc=METRICS_LOC, workers=2)
    dev = enrolled(gw)
    lock = threading.Lock()
    statuses = []

    def client(n):
        conn = gw.connect(dev if n % 2 == 0 else None)
        mine = [gw.get("/w%d/%d" % (n, i), conn=conn).status
                for i in range(10)]
        conn.close()
        with lock:
            statuses.extend(mine)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert statuses.count(200) == 40 and statuses.count(403) == 40
    m = scrape(gw)
    assert requests(m, "allow") == 40
    assert requests(m, "deny") == 40
    assert requests(m, "error") == 0
    assert one(m, "trustd_requests_total") == 80
    assert 1 <= one(m, "trustd_connects_total") <= 2
    assert 1 <= one(m, "trustd_connections") <= 2
    assert one(m, "trustd_requests_in_flight") == 0
    assert one(m, "trustd_connect_errors_total") == 0
    assert one(m, "cache_misses_total") == 0      # no zt_cache_zone
    # reading the metrics is not itself a checked request
    assert scrape(gw).samples == m.samples


def test_cache_hits_and_misses_are_counted(make_gateway):
    gw = make_gateway(extra_loc=METRICS_LOC,
                      cache="zt_cache_zone 1m max_ttl=2s;")
    dev = enrolled(gw)
    conn = gw.connect(dev)
    for _ in range(10):
        assert gw.get("/same", conn=conn).status == 200
    conn.close()
    for _ in range(3):
        assert gw.get("/denied").status == 403     # deny: never cached

    m = scrape(gw)

    assert one(m, "cache_hits_total") == 9
    assert one(m, "cache_misses_total") == 1 + 3
    assert one(m, "cache_stores_total") == 1
    assert one(m, "cache_entries") == 1
    assert one(m, "trustd_requests_total") == 1 + 3
    assert requests(m, "allow") == 10
    assert requests(m, "deny") == 3


def test_an_expired_entry_is_a_miss_and_counted_as_expired(make_gateway):
    gw = make_gateway(extra_loc=METRICS_LOC,
                      cache="zt_cache_zone 1m max_ttl=300ms;")
    dev = enrolled(gw)

    assert gw.get("/e", cert=dev).status == 200
    time.sleep(0.5)
    assert gw.get("/e", cert=dev).status == 200

    m = scrape(gw)
    assert one(m, "cache_expired_total") == 1
    assert one(m, "cache_misses_total") == 2
    assert one(m, "cache_hits_total") == 0
    assert one(m, "cache_stores_total") == 2
    assert one(m, "cache_entries") == 1


def test_a_full_zone_counts_evictions(make_gateway):
    gw = make_gateway(extra_loc=METRICS_LOC,
                      cache="zt_cache_zone 32k max_ttl=30s;",
                      trustd_extra="allow_ttl 30s")
    dev = enrolled(gw)
    conn = gw.connect(dev)
    for i in range(300):
        assert gw.get("/fill/%d" % i, conn=conn).status == 200
    conn.close()

    m = scrape(gw)

    assert one(m, "cache_stores_total") == 300
    assert one(m, "cache_evictions_total") > 0
    assert one(m, "cache_expired_total") == 0
    # nothing expires within 30 s: every stored entry is live or evicted
    assert one(m, "cache_entries") + one(m, "cache_evictions_total") == 300


def test_a_stopped_trustd_counts_connect_errors_and_closed_failures(
        make_gateway):
    gw = make_gateway(extra_loc=METRICS_LOC)
    dev = enrolled(gw)
    assert gw.get("/", cert=dev).status == 200

    gw.kill_trustd(signal.SIGKILL)
    for i in range(5):
        assert gw.get("/down/%d" % i, cert=dev).status == 503

    m = scrape(gw)              # served with trustd down: zt is off there
    assert failures(m, "closed") == 5
    assert failures(m, "open") == 0
    assert requests(m, "error") == 5
    assert requests(m, "allow") == 1
    assert one(m, "trustd_connect_errors_total") >= 1
    assert one(m, "trustd_disconnects_total") >= 1
    assert one(m, "trustd_connections") == 0

    # the log names the socket and the reason
    assert error_lines(gw, "zt: no decision (")
    assert all(gw.sock in l for l in error_lines(gw, "zt: no decision ("))
    assert all(gw.sock in l and "is trustd running" in l
               for l in error_lines(gw, "zt: cannot connect to trustd"))
    assert error_lines(gw, "zt: cannot connect to trustd")

    gw.start_trustd()
    wait_for(lambda: gw.get("/", cert=dev).status == 200, timeout=5,
             what="requests to succeed again")

    m = scrape(gw)
    assert one(m, "trustd_reconnects_total") >= 1
    assert one(m, "trustd_connections") >= 1
    assert requests(m, "allow") >= 2


def test_fail_open_activations_are_counted_by_mode(make_gateway):
    gw = make_gateway(extra_loc="zt_failure_mode open;" + METRICS_LOC)
    gw.kill_trustd(signal.SIGKILL)

    for _ in range(3):
        assert gw.get("/open").status == 200

    m = scrape(gw)
    assert failures(m, "open") == 3
    assert failures(m, "closed") == 0
    assert requests(m, "error") == 3
    assert all(gw.sock in l for l in error_lines(gw, "failing OPEN"))


def test_a_stalled_trustd_counts_a_timeout_and_a_stall(make_gateway):
    """Two requests wait on a silent connection: the first to time out
    closes it as stalled, which fails the other at once."""
    gw = make_gateway(extra_loc=METRICS_LOC, workers=1)
    dev = enrolled(gw)
    assert gw.get("/", cert=dev).status == 200
    statuses = []

    gw.kill_trustd(signal.SIGSTOP)
    try:
        threads = [threading.Thread(target=lambda p=p: statuses.append(
            gw.get(p, cert=dev).status)) for p in ("/s1", "/s2")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        m = scrape(gw)
    finally:
        gw.kill_trustd(signal.SIGCONT)

    assert statuses == [503, 503]
    assert one(m, "trustd_timeouts_total") == 1
    assert one(m, "trustd_stalls_total") == 1
    assert one(m, "trustd_disconnects_total") == 1
    assert one(m, "trustd_requests_in_flight") == 0
    assert one(m, "trustd_connections") == 0
    assert failures(m, "closed") == 2
    assert [l for l in error_lines(gw, "trustd did not answer in time")
            if gw.sock in l and "zt_timeout 500 ms" in l]

    wait_for(lambda: gw.get("/", cert=dev).status == 200, timeout=5,
             what="recovery after SIGCONT")
    assert one(scrape(gw), "trustd_reconnects_total") == 1


def test_garbage_from_trustd_counts_a_protocol_error(make_gateway):
    gw = make_gateway(extra_loc=METRICS_LOC,
                      fake_trustd=lambda rid, f: b"\x00\x00\x00\x09garbage!!")

    assert gw.get("/").status == 503

    m = scrape(gw)
    assert one(m, "trustd_protocol_errors_total") == 1
    assert one(m, "trustd_disconnects_total") == 1
    assert one(m, "trustd_connects_total") == 1
    assert failures(m, "closed") == 1
    assert [l for l in error_lines(gw, "invalid answer from trustd")
            if gw.sock in l]


def test_a_connection_dropped_before_any_answer_names_peer_user(
        make_gateway):
    """What trustd does to a worker whose uid is not in its peer_user:
    accept, then close at once."""
    gw = make_gateway(extra_loc=METRICS_LOC, workers=1,
                      fake_trustd=lambda rid, f: None)
    gw.fake.conn = lambda c: c.close()

    assert gw.get("/").status == 503

    m = scrape(gw)
    assert one(m, "trustd_connects_total") == 1
    assert one(m, "trustd_disconnects_total") == 1
    assert failures(m, "closed") == 1
    hint = error_lines(gw, "closed a new connection before answering")
    assert hint and gw.sock in hint[0]
    assert "uid %d) is in trustd's peer_user" % os.geteuid() in hint[0]


def test_login_and_step_up_decisions_are_counted(make_gateway):
    def decide(rid, fields):
        path = dict(fields)[ztwire.F_PATH].decode()
        if path == "/login":
            return ztwire.answer(rid, ztwire.LOGIN, 302,
                                 redirect="https://localhost/zt/login")
        if path == "/stepup":
            return ztwire.answer(rid, ztwire.STEP_UP, 302,
                                 redirect="https://localhost/zt/stepup")
        return ztwire.answer(rid, ztwire.STEP_UP, 302)    # no target

    gw = make_gateway(extra_loc=METRICS_LOC, fake_trustd=decide)

    assert gw.get("/login").status == 302
    assert gw.get("/stepup").status == 302
    assert gw.get("/broken").status == 503

    m = scrape(gw)
    assert requests(m, "login") == 1
    assert requests(m, "stepup") == 1
    assert requests(m, "error") == 1
    assert failures(m, "closed") == 1
    assert requests(m, "allow") == requests(m, "deny") == 0


def test_refused_ambiguous_paths_are_counted(make_gateway):
    gw = make_gateway(extra_loc=METRICS_LOC)

    assert gw.get("/admin;x=1/users").status == 400

    m = scrape(gw)
    assert one(m, "ambiguous_paths_total") == 1
    assert one(m, "trustd_requests_total") == 0


def test_requests_waiting_for_trustd_are_in_flight(make_gateway):
    release = threading.Event()

    def slow(rid, fields):
        release.wait(10)
        return ztwire.answer(rid, ztwire.ALLOW, 200)

    gw = make_gateway(extra_loc=METRICS_LOC, fake_trustd=slow,
                      timeout_ms=5000, workers=1)
    result = []
    t = threading.Thread(target=lambda: result.append(gw.get("/slow")))
    t.start()
    try:
        wait_for(lambda: gw.fake.requests >= 1, what="the request at trustd")
        m = scrape(gw)
    finally:
        release.set()
        t.join(timeout=10)

    assert one(m, "trustd_requests_in_flight") == 1
    assert one(m, "trustd_connections") == 1
    assert result[0].status == 200
    assert one(scrape(gw), "trustd_requests_in_flight") == 0


def test_the_metrics_location_can_be_put_behind_zt_policy(make_gateway):
    gw = make_gateway(extra_loc="location = %s { zt_metrics; }"
                      % METRICS_PATH)
    dev = enrolled(gw)

    assert gw.get(METRICS_PATH).status == 403        # no device: denied
    r = gw.get(METRICS_PATH, cert=dev)

    assert r.status == 200
    m = parse_prometheus(r.body.decode())
    assert requests(m, "deny") == 1
    assert requests(m, "allow") == 1                  # this very request


def test_counters_survive_an_nginx_reload(make_gateway):
    gw = make_gateway(extra_loc=METRICS_LOC)
    dev = enrolled(gw)
    for _ in range(3):
        assert gw.get("/", cert=dev).status == 200

    run(NGINX, "-p", gw.dir, "-c", gw.nginx_conf,
        "-e", os.path.join(gw.logs, "error.log"), "-s", "reload")
    wait_for(lambda: "gracefully shutting down" in gw.error_log()
             and gw.error_log().count("exited with code 0") >= 2,
             timeout=10, what="old workers to exit")

    assert gw.get("/", cert=dev).status == 200
    m = scrape(gw)
    assert requests(m, "allow") == 4
    # the old workers gave their slots back when they exited
    assert one(m, "trustd_connections") == 1
