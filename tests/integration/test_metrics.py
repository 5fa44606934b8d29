"""trustd's Prometheus metrics and structured logs (issue 9), through real
nginx, trustd and LMDB: the exposition is parsed strictly, counters move
with real requests, reloads and sign-ins, and every log line of the kv and
json formats has the documented shape."""

import http.client
import json
import math
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import TRUSTD, free_port, wait_for

POLICY = """
app "gateway" {
    host "localhost"

    rule "open area" {
        path prefix "/open"
        allow
    }

    rule "blocked area" {
        path prefix "/blocked"
        deny 451 "blocked for this test"
    }
}
"""

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)\Z")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")

KV = re.compile(r'ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z '
                r'level=(debug|info|warn|error) pid=\d+ '
                r'msg="((?:[^"\\]|\\.)*)"'
                r'( [a-z0-9_]+=("(?:[^"\\]|\\.)*"|[^ "=\\]+))*\Z')


# --- a strict reader of the text exposition format ---------------------------

def parse(text):
    """{family: {"type": t, "samples": [(name, labels, value)]}}, failing
    on anything the format (0.0.4) does not allow or ztgate promises."""
    assert text.endswith("\n"), "the exposition ends with a newline"
    families = {}
    seen = set()
    for line in text.splitlines():
        assert line == line.strip() and line, "stray whitespace: %r" % line
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert NAME.match(name), line
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert NAME.match(name), line
            assert kind in TYPES, line
            assert name not in families, "TYPE given twice: " + name
            assert name.startswith("ztgate_"), name
            if kind == "counter":
                assert name.endswith("_total"), name
            families[name] = {"type": kind, "samples": []}
            continue
        assert not line.startswith("#"), "unknown comment: " + line
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        name, labels, value = m.groups()
        family = family_of(families, name)
        assert family, "sample before its TYPE: " + line
        pairs = parse_labels(labels or "")
        key = (name, tuple(sorted(pairs.items())))
        assert key not in seen, "duplicate series: " + line
        seen.add(key)
        v = float(value)            # also +Inf, -Inf, NaN
        assert not math.isnan(v), line
        families[family]["samples"].append((name, pairs, v))
    for name, f in families.items():
        if f["type"] == "histogram":
            check_histogram(name, f["samples"])
    return families


def family_of(families, name):
    if name in families:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[:-len(suffix)]
        if (name.endswith(suffix) and base in families
                and families[base]["type"] == "histogram"):
            return base
    return None


def parse_labels(text):
    pairs = {}
    pos = 0
    while pos < len(text):
        m = LABEL.match(text, pos)
        assert m, "bad labels: %r" % text
        assert m.group(1) not in pairs, "label given twice: %r" % text
        pairs[m.group(1)] = re.sub(r"\\(.)", lambda e: {"n": "\n"}.get(
            e.group(1), e.group(1)), m.group(2))
        pos = m.end()
        if pos < len(text):
            assert text[pos] == ",", "bad labels: %r" % text
            pos += 1
    return pairs


def check_histogram(name, samples):
    buckets = [(s[1]["le"], s[2]) for s in samples
               if s[0] == name + "_bucket"]
    count = [s[2] for s in samples if s[0] == name + "_count"]
    total = [s[2] for s in samples if s[0] == name + "_sum"]
    assert buckets and len(count) == 1 and len(total) == 1, name
    assert buckets[-1][0] == "+Inf", name
    bounds = [float(le) for le, _ in buckets]
    assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds)
    values = [v for _, v in buckets]
    assert values == sorted(values), "buckets are not cumulative"
    assert values[-1] == count[0], "+Inf bucket differs from _count"
    assert total[0] >= 0


def value(families, sample, default=None, **labels):
    """The value of one series, by sample name and labels."""
    for name, pairs, v in families[family_of(families, sample)]["samples"]:
        if name == sample and pairs == labels:
            return v
    if default is not None:
        return default
    raise KeyError("%s %r" % (sample, labels))


# --- the gateway -------------------------------------------------------------

def metrics_conf(port, extra=""):
    return ("metrics_listen 127.0.0.1:%d\nmetrics_interval 1s\n"
            "journal_flush_interval 50ms\n%s" % (port, extra))


def scrape(gw):
    conn = http.client.HTTPConnection("127.0.0.1", gw.metrics_port,
                                      timeout=5)
    try:
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        body = r.read().decode()
        assert r.status == 200, (r.status, body)
        assert r.getheader("Content-Type").startswith(
            "text/plain; version=0.0.4")
        return parse(body)
    finally:
        conn.close()


def scrape_until(gw, pred, what):
    """The first scrape pred accepts (the snapshot is at most 1 s old)."""
    last = []

    def check():
        last[:] = [scrape(gw)]
        return pred(last[0])
    wait_for(check, timeout=10, what=what)
    return last[0]


def admin(gw, command):
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(gw.admin_sock)
        s.sendall(command.encode() + b"\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.decode()


@pytest.fixture
def mgw(make_gateway):
    port = free_port()
    gw = make_gateway(policy=POLICY, trustd_extra=metrics_conf(port))
    gw.metrics_port = port
    return gw


# --- the exposition ----------------------------------------------------------

def test_metrics_are_served_in_the_strict_text_format(mgw):
    # the posture census runs on a thread of its own: its first walk
    # reaches the snapshot after it finishes
    f = scrape_until(mgw, lambda f: "ztgate_devices" in f, "a census")

    for family in ("ztgate_decisions_total", "ztgate_rule_decisions_total",
                   "ztgate_decision_duration_seconds", "ztgate_logins_total",
                   "ztgate_lockouts_total", "ztgate_policy_reloads_total",
                   "ztgate_policy_info", "ztgate_store_file_bytes",
                   "ztgate_store_map_bytes", "ztgate_devices",
                   "ztgate_journal_records_written_total",
                   "ztgate_journal_pending_records", "ztgate_journal_failing",
                   "ztgate_nginx_connections",
                   "ztgate_process_start_time_seconds",
                   "ztgate_metrics_snapshot_timestamp_seconds"):
        assert family in f, family
    assert f["ztgate_decision_duration_seconds"]["type"] == "histogram"
    assert value(f, "ztgate_store_map_bytes") == 64 * 1024 * 1024
    assert value(f, "ztgate_store_file_bytes") == os.path.getsize(
        os.path.join(mgw.store, "data.mdb"))
    now = time.time()
    assert now - 5 < value(f, "ztgate_metrics_snapshot_timestamp_seconds") \
        <= now + 1
    assert value(f, "ztgate_process_start_time_seconds") <= now


def test_anything_but_get_or_head_of_metrics_is_refused(mgw):
    conn = http.client.HTTPConnection("127.0.0.1", mgw.metrics_port,
                                      timeout=5)
    for method, path, status in (("GET", "/other", 404),
                                 ("POST", "/metrics", 405),
                                 ("HEAD", "/metrics", 200)):
        conn.request(method, path)
        r = conn.getresponse()
        r.read()
        assert r.status == status, (method, path)
        conn.close()


def test_decision_counters_move_with_real_allows_and_denies(mgw):
    before = scrape(mgw)
    conn = mgw.connect()
    for _ in range(3):
        assert mgw.get("/open/x", conn=conn).status == 200
    for _ in range(2):
        assert mgw.get("/blocked/x", conn=conn).status == 451
    assert mgw.get("/nowhere", conn=conn).status == 403

    def moved(f):
        sample = "ztgate_decision_duration_seconds_count"
        return value(f, sample) - value(before, sample) == 6

    f = scrape_until(mgw, moved, "the decisions in the metrics")

    def delta(sample, **labels):
        # a rule's series starts with its first decision
        return value(f, sample, **labels) - value(before, sample, 0,
                                                  **labels)

    assert delta("ztgate_decisions_total", outcome="allow") == 3
    assert delta("ztgate_decisions_total", outcome="deny") == 3
    assert delta("ztgate_rule_decisions_total", app="gateway",
                 rule="open area") == 3
    assert delta("ztgate_rule_decisions_total", app="gateway",
                 rule="blocked area") == 2
    assert delta("ztgate_rule_decisions_total", app="", rule="default") == 1
    assert delta("ztgate_decision_duration_seconds_count") == 6
    assert value(f, "ztgate_nginx_connections") >= 1

    # every decision is counted once by outcome and once by rule
    outcomes = sum(v for n, _, v in f["ztgate_decisions_total"]["samples"])
    rules = sum(v for n, _, v in f["ztgate_rule_decisions_total"]["samples"])
    assert outcomes == rules == value(
        f, "ztgate_decision_duration_seconds_count")


def test_journal_counters_follow_the_decision_journal(mgw):
    conn = mgw.connect()
    for i in range(4):
        mgw.get("/open/%d" % i, conn=conn)

    f = scrape_until(
        mgw, lambda f: value(f, "ztgate_journal_records_written_total") >= 4,
        "journal records written")

    assert value(f, "ztgate_journal_records_queued_total") >= 4
    assert value(f, "ztgate_journal_decisions_dropped_total") == 0
    assert value(f, "ztgate_journal_append_failures_total") == 0
    assert value(f, "ztgate_journal_failing") == 0
    assert "ztgate_journal_decisions_folded_total" in f
    assert "ztgate_journal_records_purged_total" in f
    assert "ztgate_journal_pending_records" in f


def test_reloads_are_counted_and_the_policy_version_shown(mgw):
    before = scrape(mgw)
    old = [p["version"] for _, p, _ in
           before["ztgate_policy_info"]["samples"]]
    assert len(old) == 1 and old[0] != "built-in"

    mgw.write_policy(POLICY.replace("/open", "/opened"))
    mgw.reload_trustd()
    f = scrape_until(mgw, lambda f: value(
        f, "ztgate_policy_reloads_total", result="ok") == 1, "a reload")
    new = [p["version"] for _, p, _ in f["ztgate_policy_info"]["samples"]]
    assert new != old

    mgw.write_policy('app "gateway" { host "localhost"\n rule "x" { alow } }')
    mgw.reload_trustd()
    f = scrape_until(mgw, lambda f: value(
        f, "ztgate_policy_reloads_total", result="failed") == 1,
        "a failed reload")
    assert value(f, "ztgate_policy_reloads_total", result="ok") == 1
    assert [p["version"] for _, p, _ in
            f["ztgate_policy_info"]["samples"]] == new


def test_the_admin_socket_returns_the_same_metrics(mgw):
    mgw.get("/open/x")
    scrape_until(mgw, lambda f: "ztgate_devices" in f, "a census")
    reply = admin(mgw, "metrics")

    head, _, text = reply.partition("\n")
    assert head == "ok metrics"
    f = parse(text)
    assert set(f) == set(scrape(mgw))
    assert value(f, "ztgate_decisions_total", outcome="allow") >= 1


def test_device_posture_freshness_is_counted(make_gateway):
    port = free_port()
    gw = make_gateway(trustd_extra=metrics_conf(port))
    gw.metrics_port = port
    fps = [gw.enroll(gw.issue_device(name)[0], name=name)
           for name in ("fresh-laptop", "silent-laptop")]
    gw.ztctl("device", "posture-set", fps[0], "--os", "debian",
             "--firewall", "yes")

    # counted at start and then at most every minute: restart to count now
    gw.kill_trustd(signal.SIGTERM)
    gw.start_trustd()

    f = scrape_until(gw, lambda f: "ztgate_devices" in f, "a census")
    counted = {p["posture"]: v for _, p, v in f["ztgate_devices"]["samples"]}
    assert counted == {"fresh": 1, "stale": 0, "missing": 1}


def test_metrics_can_be_served_on_a_unix_socket(make_gateway, tmp_path):
    path = str(tmp_path / "metrics.sock")
    gw = make_gateway(trustd_extra="metrics_listen %s\n" % path)

    assert oct(os.stat(path).st_mode & 0o777) == "0o660"
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(path)
        s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.0 200") or head.startswith("HTTP/1.1 200")
    assert "ztgate_decisions_total" in parse(body)
    gw.kill_trustd(signal.SIGTERM)
    assert not os.path.exists(path)


@pytest.mark.parametrize("where", ["0.0.0.0:9464", "192.0.2.1:9464",
                                   "[2001:db8::1]:9464", "::1:9464",
                                   "127.0.0.1:0", "metrics.sock"])
def test_metrics_listen_accepts_only_loopback_or_a_socket_path(tmp_path,
                                                              where):
    conf = tmp_path / "trustd.conf"
    conf.write_text("listen %s/t.sock\npeer_user root\nstore %s/store\n"
                    "metrics_listen %s\n" % (tmp_path, tmp_path, where))

    p = subprocess.run([TRUSTD, "-n", "-c", str(conf)], capture_output=True,
                       text=True)

    assert p.returncode == 1
    assert "metrics_listen" in p.stderr and "loopback" in p.stderr


# --- sign-in counters --------------------------------------------------------

def test_sign_ins_failures_and_lockouts_are_counted(make_gateway):
    from test_identity import (PASSWORD, POLICY as IPOLICY, Browser,
                               enroll_user, totp)

    port = free_port()
    gw = make_gateway(policy=IPOLICY, identity=True,
                      trustd_extra=metrics_conf(port))
    gw.metrics_port = port
    secret = enroll_user(gw, "alice", groups=("staff",))

    assert Browser(gw).login("alice", PASSWORD,
                             totp(secret, time.time()))[0] == 303
    for _ in range(5):
        assert Browser(gw).login("alice", "wrong password!!",
                                 "000000")[0] == 403
    assert Browser(gw).login("mallory", PASSWORD, "000000")[0] == 403

    f = scrape_until(gw, lambda f: value(
        f, "ztgate_logins_total", outcome="failure") == 6,
        "the failures in the metrics")
    assert value(f, "ztgate_logins_total", outcome="success") == 1
    assert value(f, "ztgate_lockouts_total") == 1


# --- log formats -------------------------------------------------------------

def test_default_kv_log_lines_have_the_documented_shape(gateway, device):
    r = gateway.get('/say%22hi%22%0d%0a', cert=device)
    assert r.status == 200
    gateway.reload_trustd()

    lines = gateway.trustd_log().splitlines()
    assert lines
    bad = [l for l in lines if not KV.match(l)]
    assert not bad, bad[:5]
    msgs = [KV.match(l).group(2) for l in lines]
    assert "started" in msgs
    assert [m for m in msgs
            if 'decision:' in m and '/say\\"hi\\"??' in m]
    assert [l for l in lines if l.startswith("ts=") and "level=info" in l
            and 'msg="configuration reloaded' in l
            and l.endswith('" policy=built-in')]


def test_json_log_lines_parse_with_ts_level_and_msg(make_gateway):
    gw = make_gateway(trustd_extra="log_format json\n")
    dev = gw.issue_device("laptop")
    gw.enroll(dev[0])
    assert gw.get('/q%22%0a%C3%A9', cert=dev).status == 200
    gw.reload_trustd()

    lines = gw.trustd_log().splitlines()
    records = [json.loads(l) for l in lines]
    for rec in records:
        assert set(rec) >= {"ts", "level", "msg", "pid"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z",
                            rec["ts"])
        assert rec["level"] in ("debug", "info", "warn", "error")
    msgs = [rec["msg"] for rec in records]
    assert "started" in msgs
    assert [m for m in msgs if "decision:" in m and '/q"?\u00e9' in m]
    assert [r for r in records if r["msg"].startswith(
        "configuration reloaded") and r["policy"] == "built-in"]
