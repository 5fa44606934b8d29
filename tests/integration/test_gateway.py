"""End to end: a request through real nginx is decided by real trustd from
state in a real LMDB store (the walking skeleton, issue 2)."""

import os
import signal
import threading
import time

import pytest

from conftest import MODULE, NGINX, ZTCA, run, wait_for


def test_enrolled_device_is_allowed_and_upstream_sees_its_identity(
        gateway, device):
    r = gateway.get("/hello?x=1", cert=device)

    assert r.status == 200
    assert r.json()["path"] == "/hello?x=1"
    assert r.upstream_header("X-ZT-Device-Fingerprint") == \
        [gateway.fingerprint(device[0])]
    assert r.upstream_header("X-ZT-Device-Owner") == ["alice"]
    assert r.upstream_header("X-ZT-Device-Id")[0].startswith(
        "urn:ztgate:device:")
    assert r.upstream_header("X-ZT-Decision") == ["allow"]


def test_request_without_client_certificate_is_denied(gateway, device):
    r = gateway.get("/hello")

    assert r.status == 403
    assert b"X-ZT" not in r.body


def test_certificate_from_another_ca_is_refused(gateway, tmp_path):
    other_ca = str(tmp_path / "other-ca")
    run(ZTCA, "init", "-d", other_ca)
    stranger = gateway.issue_device("stranger", ca=other_ca)
    # even enrolled in the store, nginx did not verify it: never allowed
    gateway.enroll(stranger[0], owner="mallory")

    r = gateway.get("/hello", cert=stranger)

    assert r.status in (400, 403)
    assert b"ztgate-echo" not in r.body


def test_certificate_of_our_ca_but_not_enrolled_is_denied(gateway, device):
    unknown = gateway.issue_device("not-enrolled")

    r = gateway.get("/hello", cert=unknown)

    assert r.status == 403
    assert "device not enrolled" in gateway.error_log()


FORGED = {
    "X-ZT-User": "admin",
    "X-ZT-Device-Owner": "mallory",
    "x-zt-groups": "admins",
    "X-Zt-Decision": "allow",
    "Remote-User": "admin",
}


def test_client_sent_identity_headers_never_reach_the_upstream(
        gateway, device):
    r = gateway.get("/hello", cert=device, headers=FORGED)

    assert r.status == 200
    names = [k for k, _ in r.upstream_headers()]
    assert "x-zt-user" not in names
    assert "x-zt-groups" not in names
    assert "remote-user" not in names
    assert r.upstream_header("X-ZT-Device-Owner") == ["alice"]
    assert r.upstream_header("X-ZT-Decision") == ["allow"]


def test_identity_headers_are_stripped_where_zt_is_off_too(gateway):
    r = gateway.get("/public/page", headers=FORGED)

    assert r.status == 200
    names = [k for k, _ in r.upstream_headers()]
    assert not [n for n in names if n.startswith("x-zt-")]
    assert "remote-user" not in names


def test_killed_trustd_fails_closed_at_once_and_recovers_without_reload(
        gateway, device):
    assert gateway.get("/", cert=device).status == 200
    nginx_pid = open(os.path.join(gateway.dir, "nginx.pid")).read()

    gateway.kill_trustd(signal.SIGKILL)
    t0 = time.monotonic()
    r = gateway.get("/", cert=device)
    elapsed = time.monotonic() - t0

    assert r.status == 503
    assert elapsed < gateway.timeout_ms / 1000.0
    assert "zt: no decision" in gateway.error_log()

    gateway.start_trustd()

    def allowed():
        return gateway.get("/", cert=device).status == 200
    wait_for(allowed, timeout=5, what="requests to succeed again")
    assert open(os.path.join(gateway.dir, "nginx.pid")).read() == nginx_pid


def test_stalled_trustd_fails_closed_after_the_timeout_not_a_hang(
        gateway, device):
    assert gateway.get("/", cert=device).status == 200

    gateway.kill_trustd(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        r = gateway.get("/", cert=device)
        elapsed = time.monotonic() - t0
    finally:
        gateway.kill_trustd(signal.SIGCONT)

    assert r.status == 503
    assert 0.4 <= elapsed < 3.0, elapsed
    assert "trustd did not answer in time" in gateway.error_log()

    wait_for(lambda: gateway.get("/", cert=device).status == 200,
             timeout=5, what="recovery after SIGCONT")


def test_2000_requests_from_50_concurrent_clients_all_get_correct_answers(
        gateway, device):
    clients, per_client = 50, 40
    results = []
    lock = threading.Lock()

    def client(n):
        enrolled = n % 2 == 0
        conn = gateway.connect(device if enrolled else None, timeout=30)
        mine = []
        try:
            for i in range(per_client):
                r = gateway.get("/c%d/r%d" % (n, i), conn=conn)
                ok = (r.status == 200
                      and r.json()["path"] == "/c%d/r%d" % (n, i)
                      if enrolled else r.status == 403)
                mine.append(ok)
        finally:
            conn.close()
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=client, args=(n,))
               for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert len(results) == clients * per_client
    assert all(results), "%d wrong answers" % results.count(False)


def test_device_revoked_while_running_is_denied_on_its_next_request(
        gateway, device):
    conn = gateway.connect(device)
    assert gateway.get("/", conn=conn).status == 200

    gateway.ztctl("device", "revoke", gateway.fingerprint(device[0]),
                  "--reason", "lost")

    assert gateway.get("/", conn=conn).status == 403
    assert gateway.get("/", cert=device).status == 403
    assert "revoked" in gateway.error_log()
    conn.close()


def test_quarantined_device_is_denied_and_allowed_again_when_activated(
        gateway, device):
    fp = gateway.fingerprint(device[0])

    gateway.ztctl("device", "quarantine", fp)
    assert gateway.get("/", cert=device).status == 403

    gateway.ztctl("device", "activate", fp)
    assert gateway.get("/", cert=device).status == 200


def test_fail_open_is_an_explicit_logged_per_location_opt_in(make_gateway):
    gw = make_gateway(extra_loc="zt_failure_mode open;")
    gw.kill_trustd(signal.SIGKILL)

    r = gw.get("/anything", headers=FORGED)

    assert r.status == 200
    assert not [n for n, _ in r.upstream_headers() if n.startswith("x-zt-")]
    assert "failing OPEN" in gw.error_log()


def test_configured_failure_status_is_used(make_gateway):
    gw = make_gateway(extra_loc="zt_failure_status 500;")
    gw.kill_trustd(signal.SIGKILL)

    assert gw.get("/").status == 500


def test_deny_is_final_even_under_satisfy_any(make_gateway):
    gw = make_gateway(extra_loc="satisfy any; allow all;")

    assert gw.get("/").status == 403


def test_zt_on_without_trustd_address_is_a_config_error(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("""
load_module %s;
events {}
http { server { listen 127.0.0.1:1; location / { zt on; } } }
""" % MODULE)

    p = run(NGINX, "-t", "-p", str(tmp_path), "-c", str(conf),
            "-e", str(tmp_path / "err.log"), check=False)

    assert p.returncode != 0
    assert "needs \"zt_trustd\"" in p.stderr


def test_control_characters_in_the_path_cannot_forge_trustd_log_lines(
        gateway, device):
    r = gateway.get("/x%0d%0aFORGED-LINE:%20admin%20allowed", cert=device)

    assert r.status == 200
    lines = gateway.trustd_log().splitlines()
    assert not [l for l in lines if l.startswith("FORGED-LINE")]
    assert [l for l in lines if "??FORGED-LINE: admin allowed" in l]


def test_nginx_reload_after_trustd_traffic_leaves_no_alert(gateway, device):
    conn = gateway.connect(device)
    for _ in range(5):
        assert gateway.get("/", conn=conn).status == 200
    conn.close()
    pid = open(os.path.join(gateway.dir, "nginx.pid")).read().strip()

    run(NGINX, "-p", gateway.dir, "-c", gateway.nginx_conf,
        "-e", os.path.join(gateway.logs, "error.log"), "-s", "reload")
    wait_for(lambda: "gracefully shutting down" in gateway.error_log()
             and gateway.error_log().count("exited with code 0") >= 2,
             timeout=10, what="old workers to exit")

    assert gateway.get("/", cert=device).status == 200
    assert open(os.path.join(gateway.dir, "nginx.pid")).read().strip() == pid
    assert "[alert]" not in gateway.error_log()


def admin(gw, command):
    import socket as so
    with so.socket(so.AF_UNIX) as s:
        s.connect(gw.admin_sock)
        s.sendall(command.encode() + b"\n")
        out = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return out.decode()
            out += chunk


def test_trustd_counts_decisions_and_their_latency(gateway, device):
    admin(gateway, "stats-reset")
    for _ in range(7):
        assert gateway.get("/", cert=device).status == 200
    for _ in range(3):
        assert gateway.get("/").status == 403

    words = admin(gateway, "stats").split()
    stats = dict(zip(words[1::2], words[2::2]))

    assert words[0] == "ok"
    assert stats["decisions"] == "10"
    assert stats["allow"] == "7" and stats["deny"] == "3"
    assert 0 < float(stats["p50_us"]) <= float(stats["p99_us"])
