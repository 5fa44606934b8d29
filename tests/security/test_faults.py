"""Faults: trustd killed under load, a full store, a database directory
that is read-only, missing or corrupt, and nginx reloaded under load."""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import (POLICY, TRUSTD, ZTCTL, Browser, Gateway, enroll_user,
                      login, run, wait_for)


def hammer(gw, clients, stop, results, lock):
    """Each thread sends requests as (cert, expected-when-decided) until
    stop is set, recording (expected, status)."""
    def loop(cert, expect):
        while not stop.is_set():
            try:
                status = gw.get("/load", cert=cert, timeout=5).status
            except OSError as e:
                status = "error: %s" % e
            with lock:
                results.append((expect, status))
    threads = [threading.Thread(target=loop, args=c, daemon=True)
               for c in clients]
    for t in threads:
        t.start()
    return threads


def test_trustd_killed_under_load_never_allows_wrongly_and_keeps_devices(
        make_gateway):
    gw = make_gateway(timeout_ms=500)
    good = gw.issue_device("alice-laptop")
    fp = gw.enroll(good[0])
    stranger = gw.issue_device("not-enrolled")
    stop, lock, results = threading.Event(), threading.Lock(), []
    threads = hammer(gw, [(good, 200), (good, 200), (stranger, 403),
                          (None, 403)], stop, results, lock)
    try:
        time.sleep(0.5)
        gw.kill_trustd(signal.SIGKILL)
        time.sleep(0.5)
        gw.start_trustd()
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(10)

    wrong = [(e, s) for e, s in results if s not in (e, 503)]
    assert not wrong, wrong[:10]
    assert any(s == 503 for _, s in results)
    assert sum(1 for e, s in results if e == 200 and s == 200) > 10
    # the enrolled device survived the crash
    assert "active" in gw.ztctl("device", "show", fp).stdout
    wait_for(lambda: gw.get("/x", cert=good).status == 200, timeout=5,
             what="the enrolled device to be allowed after the restart")
    assert gw.get("/x", cert=stranger).status == 403


def test_nginx_reload_under_load_fails_no_request(make_gateway):
    gw = make_gateway()
    good = gw.issue_device("alice-laptop")
    gw.enroll(good[0])
    stop, lock, results = threading.Event(), threading.Lock(), []
    threads = hammer(gw, [(good, 200)] * 4, stop, results, lock)
    pid = int(open(os.path.join(gw.dir, "nginx.pid")).read())
    try:
        for _ in range(3):
            time.sleep(0.4)
            os.kill(pid, signal.SIGHUP)
        time.sleep(0.6)
    finally:
        stop.set()
        for t in threads:
            t.join(10)

    assert len(results) > 20
    assert all(s == 200 for _, s in results), \
        [s for _, s in results if s != 200][:10]


class SmallStoreGateway(Gateway):
    """A gateway whose store may grow to 1 MiB only."""

    def write_trustd_conf(self):
        super().write_trustd_conf()
        text = open(self.trustd_conf).read()
        with open(self.trustd_conf, "w") as f:
            f.write(text.replace("store_map_size 64M", "store_map_size 1M"))

    def ztctl(self, *args, check=True):
        # through the configuration: "ztctl -s" would grow the map
        return run(ZTCTL, "-c", self.trustd_conf, "--actor", "pytest",
                   *args, check=check)


def test_a_full_store_refuses_writes_clearly_and_decisions_go_on(tmp_path):
    gw = SmallStoreGateway(tmp_path / "gw", policy=POLICY, identity=True)
    try:
        gw.start()
        secret = enroll_user(gw, "alice", groups=("staff",))
        b = Browser(gw)
        assert login(b, "alice", secret)[0] == 303
        dev = gw.issue_device("bob-laptop")
        gw.enroll(dev[0], owner="bob")

        # fill the store through trustd's configuration (its map size)
        display = "x" * 120
        full = None
        for i in range(6000):
            p = run(ZTCTL, "-c", gw.trustd_conf, "--actor", "pytest",
                    "user", "create", "filler%d" % i, "--display", display,
                    "--group", "g1", "--group", "g2", check=False)
            if p.returncode != 0:
                full = p.stderr
                break
        assert full and "store is full" in full, full
        assert "raise store_map_size" in full

        # decisions keep working: the session and the device
        assert b.request("GET", "/reports/q3")[0] == 200
        assert gw.get("/device/x", cert=dev).status in (200, 302)
        assert gw.procs["trustd"].poll() is None
    finally:
        gw.stop()
    assert not gw.bad_log_lines()


def trustd_conf(d, store):
    user = pwd.getpwuid(os.geteuid()).pw_name
    path = os.path.join(d, "trustd.conf")
    with open(path, "w") as f:
        f.write("listen %s/t.sock\npeer_user %s\nstore %s\n"
                "log_target stderr\n" % (d, user, store))
    os.chmod(path, 0o644)
    return path


def start_fails(argv, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=20,
                       **kw)
    out = p.stdout + p.stderr
    assert p.returncode > 0, (p.returncode, out)   # refused, not a crash
    for m in ("AddressSanitizer", "runtime error:", "Segmentation"):
        assert m not in out, out
    return out


def test_a_missing_database_directory_refuses_start(tmp_path):
    missing = tmp_path / "no" / "such" / "dir" / "store"
    out = start_fails([TRUSTD, "-f", "-c",
                       trustd_conf(str(tmp_path), str(missing))])

    assert str(missing) in out or "store" in out, out
    assert not os.path.exists(str(tmp_path / "t.sock"))


def test_a_read_only_database_directory_refuses_start():
    d = tempfile.mkdtemp(prefix="zt-ro-")
    try:
        os.chmod(d, 0o755)
        store = os.path.join(d, "store")
        run(ZTCTL, "-s", store, "user", "create", "seed")   # an existing store
        os.chmod(store, 0o555)
        for f in os.listdir(store):
            os.chmod(os.path.join(store, f), 0o444)
        conf = trustd_conf(d, store)
        argv = [TRUSTD, "-f", "-c", conf]
        if os.geteuid() == 0:
            # root ignores file modes: run as nobody, to whom the store is
            # read-only (the socket directory must stay writable)
            sockdir = tempfile.mkdtemp(prefix="zt-ro-sock-")
            os.chmod(sockdir, 0o777)
            with open(conf, "w") as f:
                f.write("listen %s/t.sock\npeer_user nobody\nstore %s\n"
                        "log_target stderr\n" % (sockdir, store))
            argv = ["setpriv", "--reuid", "nobody", "--regid", "nogroup",
                    "--clear-groups"] + argv
        out = start_fails(argv)
        assert "store" in out.lower(), out
        assert "denied" in out.lower() or "read-only" in out.lower(), out
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("damage", ["garbage header", "truncated",
                                    "zeroed meta pages"])
def test_a_corrupt_store_is_refused_at_start_not_a_crash(tmp_path, damage):
    store = str(tmp_path / "store")
    run(ZTCTL, "-s", store, "user", "create", "seed")
    data = os.path.join(store, "data.mdb")
    size = os.path.getsize(data)
    with open(data, "r+b") as f:
        if damage == "garbage header":
            f.write(os.urandom(64) * 8)
        elif damage == "truncated":
            f.truncate(100)
        else:
            f.write(b"\0" * min(size, 8192))

    out = start_fails([TRUSTD, "-f", "-c",
                       trustd_conf(str(tmp_path), store)])

    assert "store" in out.lower(), out
