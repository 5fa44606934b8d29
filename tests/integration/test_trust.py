"""Trust inference (stage three) through real nginx, trustd and LMDB: the
score reaches the upstream, each signal moves it in the documented
direction (docs/trust.md), policy thresholds act on it, and blocklists
refuse addresses."""

import http.client
import json
import os
import signal
import time

import pytest

from conftest import ZTCTL, run, wait_for
from test_identity import Browser, enroll_user, rel, signed_in

POLICY = """
app "gateway" {
    host "localhost"

    rule "low trust steps up" {
        path prefix "/guarded"
        when user.authenticated and trust.score < 80
        step-up
    }

    rule "blocklisted sources" {
        when context.blocklisted
        deny 403 "source blocklisted"
    }

    rule "forbidden" {
        path prefix "/forbidden"
        when user.authenticated
        deny 403 "not here"
    }

    rule "signed in" {
        when user.authenticated
        allow
    }

    rule "sign in first" {
        when not user.authenticated
        login
    }
}
"""


class From:
    """A gateway seen from another loopback source address."""

    def __init__(self, gw, source):
        self.gw = gw
        self.source = source

    def connect(self, cert=None, timeout=10):
        return http.client.HTTPSConnection(
            "localhost", self.gw.port, context=self.gw.ssl_context(cert),
            timeout=timeout, source_address=(self.source, 0))


def score(b, path="/"):
    """The trust score trustd sent upstream with an allowed request."""
    time.sleep(1.1)     # past any cached decision (allow_ttl)
    status, headers, body = b.request("GET", path)
    assert status == 200, (status, body[:200])
    vals = [v for k, v in json.loads(body)["headers"]
            if k.lower() == "x-zt-trust-score"]
    assert len(vals) == 1, vals
    return int(vals[0])


def trust_gw(make_gateway, **kw):
    gw = make_gateway(policy=POLICY, identity=True, **kw)
    gw.secret = enroll_user(gw, "alice", groups=("staff",))
    return gw


def test_a_new_source_address_lowers_the_score(make_gateway):
    gw = trust_gw(make_gateway)
    b = signed_in(gw)

    first = score(b)
    known = score(b)
    b.gw = From(gw, "127.0.0.2")
    elsewhere = score(b)
    again = score(b)

    assert known == first + 15      # 127.0.0.1 is known after the first
    assert elsewhere == known - 15  # 127.0.0.2 is new for alice
    assert again == known           # and then known too


def test_known_addresses_survive_a_restart(make_gateway):
    gw = trust_gw(make_gateway)
    b = signed_in(gw)
    score(b)
    known = score(b)

    gw.kill_trustd(signal.SIGTERM)      # flushes the history on the way out
    gw.start_trustd()

    assert score(b) == known


def test_a_burst_of_denials_lowers_the_session_score(make_gateway):
    gw = trust_gw(make_gateway)
    b = signed_in(gw)
    score(b)
    before = score(b)

    for _ in range(10):
        assert b.request("GET", "/forbidden/x")[0] == 403

    after = score(b)
    assert after <= before - 25     # ten denials: the full denials weight


def test_stale_posture_drops_the_score_and_the_policy_asks_for_step_up(
        make_gateway):
    gw = trust_gw(make_gateway, trustd_extra="posture_max_age 10s")
    crt = gw.issue_device("alice-laptop")
    fp = gw.enroll(crt[0], owner="alice")
    b = signed_in(gw, cert=crt)
    score(b)

    gw.ztctl("device", "posture-set", fp, "--disk-encrypted", "yes",
             "--firewall", "yes", "--screen-lock", "yes",
             "--endpoint-protection", "yes")
    fresh = score(b, "/guarded/page")
    assert fresh >= 80

    time.sleep(10.5)
    stale = score(b)
    assert stale < fresh and stale < 80

    status, headers, _ = b.request("GET", "/guarded/page")
    assert status == 302
    assert rel(headers["Location"]).startswith("/zt/step-up?")


def test_an_unenrolled_device_scores_lower_than_an_enrolled_one(
        make_gateway):
    gw = trust_gw(make_gateway)
    crt = gw.issue_device("alice-laptop")
    with_device = signed_in(gw, cert=crt)
    score(with_device)
    unenrolled = score(with_device)

    gw.enroll(crt[0], owner="alice")
    enrolled = score(with_device)

    assert enrolled == unenrolled + 20  # device_enrolled + device_bound


def test_weights_are_configurable(make_gateway):
    gw = trust_gw(make_gateway,
                  trustd_extra="trust_base 30\ntrust_weight new_address 0")
    b = signed_in(gw)
    first = score(b)
    assert score(b) == first        # a new address weighs nothing now


def feed(tmp_path, lines):
    path = os.path.join(str(tmp_path), "feed.txt")
    with open(path, "w") as f:
        f.write(lines)
    return path


def test_blocklisted_addresses_are_refused(make_gateway, tmp_path):
    path = feed(tmp_path, "# test feed\nnot-an-address\n127.0.0.2\n")
    gw = make_gateway(trustd_extra="blocklist test %s" % path)
    crt = gw.issue_device("laptop")
    gw.enroll(crt[0])

    wait_for(lambda: "%s:2:" % path in gw.trustd_log(),
             what="the malformed line to be reported")
    assert gw.get("/", cert=crt).status == 200
    conn = From(gw, "127.0.0.2").connect(crt)
    assert gw.get("/", cert=crt, conn=conn).status == 403


def test_staff_entries_apply_after_a_reload(make_gateway, tmp_path):
    gw = make_gateway()
    crt = gw.issue_device("laptop")
    gw.enroll(crt[0])
    assert gw.get("/", cert=crt).status == 200

    gw.ztctl("blocklist", "add", "127.0.0.0/8", "--feed", "incident",
             "--expires", "2099-01-01", "--reason", "test")
    assert "127.0.0.0/8" in gw.ztctl("blocklist", "list").stdout
    gw.reload_trustd()
    time.sleep(1.1)
    assert gw.get("/", cert=crt).status == 403

    gw.ztctl("blocklist", "remove", "127.0.0.0/8", "--feed", "incident")
    gw.reload_trustd()
    time.sleep(1.1)
    assert gw.get("/", cert=crt).status == 200


def test_the_policy_sees_blocklist_membership(make_gateway, tmp_path):
    path = feed(tmp_path, "127.0.0.2/32\n")
    gw = trust_gw(make_gateway, trustd_extra="blocklist test %s" % path)
    b = signed_in(gw)
    score(b)
    b.gw = From(gw, "127.0.0.2")
    time.sleep(1.1)
    status, _, body = b.request("GET", "/")
    assert status == 403


def explain(gw, request, *args):
    return run(ZTCTL, "-c", gw.trustd_conf, "explain", "--request", request,
               *args).stdout


def field(out, name):
    return [line.split()[1:] for line in out.splitlines()
            if line.split() and line.split()[0] == name][0]


def test_explain_output_matches_the_decision(make_gateway, tmp_path):
    path = feed(tmp_path, "127.0.0.3\n")
    gw = trust_gw(make_gateway, trustd_extra="blocklist test %s" % path)

    out = explain(gw, "GET https://localhost/doc", "--user", "alice")
    assert field(out, "decision") == ["allow", "200"]
    assert field(out, "rule") == ["signed", "in"]
    assert field(out, "new_address") == ["1.000", "-15", "-15.0"]
    explained = int(field(out, "score")[0])

    # the same request, for real: the same decision and the same score
    b = signed_in(gw)
    assert score(b, "/doc") == explained

    # nobody signed in: the policy's login rule
    out = explain(gw, "GET https://localhost/doc")
    assert field(out, "decision")[0] == "login"
    assert field(out, "rule") == ["sign", "in", "first"]

    out = explain(gw, "GET https://localhost/doc", "--user", "alice",
                  "--source", "127.0.0.3")
    assert field(out, "decision") == ["deny", "403"]
    assert "on blocklist test" in out
    assert field(out, "blocklisted") == ["1.000", "-60", "-60.0"]
    b.gw = From(gw, "127.0.0.3")
    time.sleep(1.1)
    assert b.request("GET", "/doc")[0] == 403


def contribution(out, name):
    return float(field(out, name)[2])


def test_trusted_networks_raise_the_score(make_gateway):
    gw = trust_gw(make_gateway, trustd_extra="trusted_network 10.0.0.0/8")
    inside = explain(gw, "GET https://localhost/", "--user", "alice",
                     "--source", "10.9.8.7")
    outside = explain(gw, "GET https://localhost/", "--user", "alice",
                      "--source", "192.0.2.1")
    assert contribution(inside, "trusted_network") == 10.0
    assert contribution(outside, "trusted_network") == 0.0
    assert int(field(inside, "score")[0]) == \
        int(field(outside, "score")[0]) + 10


def test_a_quarantined_device_lowers_the_score(make_gateway):
    gw = trust_gw(make_gateway)
    crt = gw.issue_device("alice-laptop")
    fp = gw.enroll(crt[0], owner="alice")

    def device_score():
        out = explain(gw, "GET https://localhost/", "--user", "alice",
                      "--device", fp)
        return int(field(out, "score")[0]), out

    active, out = device_score()
    assert contribution(out, "device_enrolled") == 10.0
    assert contribution(out, "device_bound") == 10.0

    gw.ztctl("device", "quarantine", fp, "--reason", "test")
    quarantined, out = device_score()
    assert contribution(out, "device_quarantined") == -30.0
    assert quarantined == active - 10 - 30


def test_failed_sign_ins_lower_the_score(make_gateway):
    gw = trust_gw(make_gateway)
    before = explain(gw, "GET https://localhost/", "--user", "alice")

    b = Browser(gw)
    status, _, _ = b.login("alice", "wrong password", "000000")
    assert status != 303
    b.login("alice", "wrong password", "000000")

    after = explain(gw, "GET https://localhost/", "--user", "alice")
    assert contribution(after, "login_failures") == -8.0   # 2/5 x 20
    assert int(field(after, "score")[0]) == \
        int(field(before, "score")[0]) - 8


def test_a_request_burst_lowers_the_session_score(make_gateway):
    gw = trust_gw(make_gateway)
    b = signed_in(gw)
    score(b)
    before = score(b)

    # one 10-second rate bucket: start early in it
    while time.time() % 10 > 3:
        time.sleep(0.2)
    conn = gw.connect()
    try:
        for _ in range(60):
            conn.request("GET", "/burst", headers={
                "Cookie": "; ".join("%s=%s" % kv for kv in b.cookies.items())})
            r = conn.getresponse()
            body = r.read()
            assert r.status == 200
    finally:
        conn.close()
    burst = int([v for k, v in json.loads(body)["headers"]
                 if k.lower() == "x-zt-trust-score"][0])
    assert burst <= before - 10
