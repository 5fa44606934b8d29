"""The tamper-evident decision journal (issues 8 and 6), through real nginx
and trustd: every decision and staff action in one hash chain, exported as
JSON lines, verified by ztctl, a recorded decision explained, and a journal
that cannot be written (a file size limit, as a full disk would) failing
closed and losing nothing."""

import hashlib
import json
import os
import resource
import socket

import pytest

from conftest import wait_for

POLICY = """
app "gateway" {
    host "localhost"

    rule "records" {
        path prefix "/records"
        when device.known
        allow
    }

    rule "admin area" {
        path prefix "/admin"
        deny 403 "staff only"
    }
}
"""

FAST = "journal_flush_interval 50ms\n"


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


def journal(gw, *args):
    """Decision records, as the exported JSON objects."""
    out = gw.ztctl("audit", "search", "--kind", "decision", "--json",
                   *args).stdout
    return [json.loads(l) for l in out.splitlines()]


def wait_journal(gw, pred, what):
    found = []

    def check():
        found[:] = [r for r in journal(gw) if pred(r)]
        return found
    wait_for(check, timeout=15, what=what)
    return found


@pytest.fixture
def jgw(make_gateway):
    gw = make_gateway(policy=POLICY, trustd_extra=FAST)
    crt, key = gw.issue_device("laptop1")
    gw.enroll(crt, owner="alice")
    gw.device = (crt, key)
    gw.device_fp = gw.fingerprint(crt)
    return gw


def test_every_decision_is_recorded_with_who_what_and_why(jgw):
    assert jgw.get("/records/7?ssn=A123456789", cert=jgw.device).status == 200
    assert jgw.get("/admin/users", cert=jgw.device).status == 403
    assert jgw.get("/records/8").status == 403      # no device: default deny

    recs = wait_journal(jgw, lambda r: r["path"].startswith(("/records",
                                                             "/admin")),
                        "three decision records")
    wait_for(lambda: len([r for r in journal(jgw)
                          if r["path"] in ("/records/7", "/admin/users",
                                           "/records/8")]) == 3,
             what="all three records")
    recs = {r["path"]: r for r in journal(jgw)}

    allow = recs["/records/7"]
    assert allow["outcome"] == "allow" and allow["status"] == 200
    assert allow["rule"] == "records"
    assert allow["where"].endswith(":5")
    assert allow["policy"] != ""
    assert allow["device_fp"] == jgw.device_fp
    assert allow["device"].startswith("urn:ztgate:device:")
    assert allow["source"] == "127.0.0.1"
    assert allow["method"] == "GET" and allow["host"] == "localhost"
    assert 0 <= allow["score"] <= 100
    assert set(allow["signals"]) >= {"factors", "device_enrolled",
                                     "blocklisted", "denials"}
    assert allow["signals"]["device_enrolled"]["value"] == 100

    # personal data kept to what an auditor needs: no query string
    line = jgw.ztctl("audit", "export").stdout
    assert "A123456789" not in line and "ssn" not in line

    deny = recs["/admin/users"]
    assert deny["outcome"] == "deny" and deny["status"] == 403
    assert deny["rule"] == "admin area" and "staff only" in deny["reason"]

    nodev = recs["/records/8"]
    assert nodev["outcome"] == "deny" and nodev["rule"] == ""
    assert nodev["device_fp"] == ""


def test_staff_actions_and_decisions_share_one_verified_chain(jgw):
    jgw.get("/records/1", cert=jgw.device)
    wait_journal(jgw, lambda r: r["path"] == "/records/1", "a decision")
    jgw.ztctl("device", "quarantine", jgw.device_fp[:16], "--reason",
              "lost laptop")

    lines = jgw.ztctl("audit", "export").stdout.splitlines()
    recs = [json.loads(l) for l in lines]
    kinds = [(r["kind"], r.get("action", r.get("outcome"))) for r in recs]
    assert ("action", "device.enroll") in kinds
    assert ("decision", "allow") in kinds
    assert ("action", "device.quarantine") in kinds
    staff = [r for r in recs if r.get("action") == "device.quarantine"][0]
    assert staff["actor"] == "pytest"

    # the chain, recomputed here from the exported lines alone
    prev = "0" * 64
    for line, r in zip(lines, recs):
        assert r["prev"] == prev
        body = line[:line.rindex(',"hash":')] + "}"
        assert hashlib.sha256(body.encode()).hexdigest() == r["hash"]
        prev = r["hash"]
    assert [r["seq"] for r in recs] == list(range(1, len(recs) + 1))

    out = jgw.ztctl("audit", "verify").stdout
    assert "journal intact: records 1 to %d" % len(recs) in out
    assert "head %d:%s" % (len(recs), prev) in out


def test_an_altered_or_shortened_export_is_detected(jgw, tmp_path):
    jgw.get("/admin/x", cert=jgw.device)
    jgw.get("/records/2", cert=jgw.device)
    wait_journal(jgw, lambda r: r["path"] == "/records/2", "records")
    path = str(tmp_path / "export.jsonl")
    jgw.ztctl("audit", "export", "-o", path)
    head = jgw.ztctl("audit", "verify", "--file", path).stdout
    assert "export intact" in head
    noted = head.split("head ")[1].strip()
    lines = open(path).read().splitlines(True)

    def verify(text, *extra):
        p = str(tmp_path / "bad.jsonl")
        open(p, "w").write(text)
        return jgw.ztctl("audit", "verify", "--file", p, *extra, check=False)

    # a deny rewritten as an allow
    i = next(i for i, l in enumerate(lines) if '"outcome":"deny"' in l)
    forged = lines[:]
    forged[i] = forged[i].replace('"outcome":"deny"', '"outcome":"allow"')
    r = verify("".join(forged))
    assert r.returncode == 1 and "altered" in r.stdout

    # the same forgery with its own hash recomputed: the next link breaks
    body = forged[i][:forged[i].rindex(',"hash":')] + "}"
    forged[i] = body[:-1] + ',"hash":"%s"}\n' % hashlib.sha256(
        body.encode()).hexdigest()
    r = verify("".join(forged))
    assert r.returncode == 1 and "does not link" in r.stdout

    # a record removed from the middle
    r = verify("".join(lines[:i] + lines[i + 1:]))
    assert r.returncode == 1 and "missing" in r.stdout

    # the last records cut off: only a head noted elsewhere can tell
    r = verify("".join(lines[:-1]))
    assert r.returncode == 0
    r = verify("".join(lines[:-1]), "--head", noted)
    assert r.returncode == 1 and "not in it" in r.stdout
    assert verify("".join(lines), "--head", noted).returncode == 0

    # the store itself agrees with the head noted from the export
    out = jgw.ztctl("audit", "verify", "--head", noted).stdout
    assert "noted head" in out and "matches" in out


def test_a_recorded_decision_is_explained_factor_by_factor(jgw):
    jgw.get("/records/42", cert=jgw.device)
    rec = wait_journal(jgw, lambda r: r["path"] == "/records/42",
                       "the decision")[0]

    out = jgw.ztctl("explain", "--decision", str(rec["seq"])).stdout
    assert "decision  allow 200" in out
    assert "request   GET localhost/records/42" in out
    assert "rule      records at " in out
    assert "score     %d" % rec["score"] in out
    assert "device_enrolled" in out and "blocklisted" in out
    assert jgw.device_fp in out
    # the same as audit show
    assert jgw.ztctl("audit", "show", str(rec["seq"])).stdout == out

    r = jgw.ztctl("explain", "--decision", "999999", check=False)
    assert r.returncode == 3 and "no journal record" in r.stderr


def test_repeated_identical_decisions_fold_into_a_count(make_gateway):
    gw = make_gateway(policy=POLICY, trustd_extra="journal_flush_interval 2s")
    crt, key = gw.issue_device("laptop2")
    gw.enroll(crt)
    conn = gw.connect((crt, key))
    for _ in range(25):
        assert gw.get("/records/same", conn=conn).status == 200
    conn.close()
    admin(gw, "journal-flush")

    recs = wait_journal(gw, lambda r: r["path"] == "/records/same",
                        "the folded record")
    wait_for(lambda: sum(r["count"] for r in journal(gw)
                         if r["path"] == "/records/same") == 25,
             what="every repetition counted")
    assert len([r for r in journal(gw) if r["path"] == "/records/same"]) < 5
    assert "folded" in admin(gw, "journal")


def test_search_filters(jgw):
    jgw.get("/admin/a", cert=jgw.device)
    jgw.get("/records/b", cert=jgw.device)
    wait_journal(jgw, lambda r: r["path"] == "/records/b", "records")

    deny = jgw.ztctl("audit", "search", "--outcome", "deny").stdout
    assert "/admin/a" in deny and "/records/b" not in deny
    dev = jgw.ztctl("audit", "search", "--device", jgw.device_fp[:12],
                    "--since", "1h").stdout
    assert "/admin/a" in dev and "/records/b" in dev
    staff = jgw.ztctl("audit", "search", "--kind", "action", "--action",
                      "device.").stdout
    assert "device.enroll" in staff and "decision." not in staff
    assert jgw.ztctl("audit", "search", "--since", "2999-01-01").stdout == ""
    bad = jgw.ztctl("audit", "search", "--since", "yesterday", check=False)
    assert bad.returncode == 2


def test_retention_removes_old_records_and_the_chain_still_verifies(
        make_gateway):
    gw = make_gateway(policy=POLICY,
                      trustd_extra=FAST + "journal_retention 2s\n")
    gw.get("/records/old")
    wait_for(lambda: "retention removed" in gw.trustd_log(), timeout=20,
             what="retention to run")
    wait_for(lambda: not [r for r in journal(gw)
                          if r["path"] == "/records/old"],
             timeout=20, what="the old record to go")
    out = gw.ztctl("audit", "verify").stdout
    assert "journal intact" in out and "removed by retention" in out
    purge = gw.ztctl("audit", "search", "--action", "journal.purge").stdout
    assert "journal.purge" in purge


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_a_journal_that_cannot_be_written_fails_closed_and_loses_nothing(
        make_gateway, mode):
    gw = make_gateway(policy=POLICY, trustd_extra=FAST + (
        "journal_failure open\n" if mode == "open" else ""))
    crt, key = gw.issue_device("laptop3")
    gw.enroll(crt)
    dev = (crt, key)
    assert gw.get("/records/before", cert=dev).status == 200
    wait_journal(gw, lambda r: r["path"] == "/records/before", "a record")

    # the disk is full for trustd: its store may not grow by another byte
    pid = gw.procs["trustd"].pid
    data = os.path.join(gw.store, "data.mdb")
    size = os.path.getsize(data)
    resource.prlimit(pid, resource.RLIMIT_FSIZE,
                     (size, resource.RLIM_INFINITY))
    try:
        conn = gw.connect(dev)
        statuses = []
        for i in range(400):
            statuses.append(gw.get("/records/full-%d" % i, conn=conn).status)
            if "decision journal: cannot write" in gw.trustd_log() and \
                    len(statuses) > 20:
                break
        conn.close()
        wait_for(lambda: "decision journal: cannot write" in gw.trustd_log(),
                 what="the journal failure to be logged")
        during = gw.get("/records/during", cert=dev)
        if mode == "closed":
            assert during.status == 503
            assert "every decision is denied" in gw.trustd_log()
        else:
            assert during.status == 200
            assert "decisions continue unrecorded" in gw.trustd_log()
        assert "failing 1" in admin(gw, "journal")
        # the store is untouched by the failure and keeps serving reads
        assert gw.ztctl("device", "list").returncode == 0
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    wait_for(lambda: "decision journal: writing again" in gw.trustd_log(),
             timeout=15, what="the journal to recover")
    assert gw.get("/records/after", cert=dev).status == 200

    # nothing lost: the decisions made while it could not write are there,
    # the fail-closed answers included, and the chain is whole
    wait_journal(gw, lambda r: r["path"] == "/records/after", "after")
    recs = {r["path"]: r for r in journal(gw)}
    assert "/records/during" in recs
    if mode == "closed":
        assert recs["/records/during"]["status"] == 503
        assert recs["/records/during"]["reason"] == \
            "decision journal unavailable"
    assert all("/records/full-%d" % i in recs for i in range(len(statuses)))
    assert "journal intact" in gw.ztctl("audit", "verify").stdout
    assert "dropped 0" in admin(gw, "journal")
