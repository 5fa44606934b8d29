"""Operating the store and the keys (issue 9): a consistent hot backup
taken under load, a restore, and rotating the key that seals TOTP secrets,
each against real trustd, nginx and LMDB files."""

import os
import signal
import threading
import time

from conftest import ZTCTL, run, wait_for
from test_identity import (POLICY, PASSWORD, Browser, avoid_step_edge,
                           enroll_user, totp)


def restart(gw):
    """Restart trustd and wait for its portal too (the log keeps the
    previous process's lines)."""
    n = gw.trustd_log().count("sign-in portal on")
    gw.kill_trustd(signal.SIGTERM)
    gw.start_trustd()
    wait_for(lambda: gw.trustd_log().count("sign-in portal on") > n,
             what="the restarted portal")


def ztctl_conf(gw, *args, check=True):
    return run(ZTCTL, "-c", gw.trustd_conf, "--actor", "pytest", *args,
               check=check)


def test_a_hot_backup_under_load_restores_every_enrolled_device(
        make_gateway, tmp_path):
    gw = make_gateway()
    devices = []
    for i in range(3):
        crt, key = gw.issue_device("laptop%d" % i)
        gw.enroll(crt, owner="user%d" % i)
        devices.append((crt, key))

    # requests keep trustd writing (journal, behaviour) during the copy
    stop = threading.Event()
    statuses = []

    def load():
        conn = gw.connect(devices[0])
        n = 0
        while not stop.is_set() and n < 5000:
            statuses.append(gw.get("/p%d" % n, conn=conn).status)
            n += 1
        conn.close()

    t = threading.Thread(target=load)
    t.start()
    try:
        time.sleep(0.3)
        backup = str(tmp_path / "backup")
        out = gw.ztctl("store", "backup", backup).stdout
    finally:
        stop.set()
        t.join(timeout=30)
    assert statuses and set(statuses) == {200}
    assert "journal intact" in out and "head " in out
    assert os.path.getsize(os.path.join(backup, "data.mdb")) > 0

    # never over an existing copy
    again = gw.ztctl("store", "backup", backup, check=False)
    assert again.returncode == 1 and "already exists" in again.stderr

    # changes after the backup ...
    gw.ztctl("device", "revoke", gw.fingerprint(devices[1][0])[:16],
             "--reason", "after the backup")
    assert gw.get("/", cert=devices[1]).status == 403

    # ... restore refuses while trustd runs
    r = run(ZTCTL, "-c", gw.trustd_conf, "store", "restore", backup,
            check=False)
    assert r.returncode == 1 and "stop it before restoring" in r.stderr

    gw.kill_trustd(signal.SIGTERM)
    r = run(ZTCTL, "-c", gw.trustd_conf, "store", "restore", backup)
    assert "restored" in r.stdout and "kept as" in r.stdout
    kept = [f for f in os.listdir(gw.store)
            if f.startswith("data.mdb.before-restore-")]
    assert len(kept) == 1

    gw.start_trustd()
    for crt, key in devices:
        assert gw.get("/", cert=(crt, key)).status == 200
    assert "journal intact" in gw.ztctl("audit", "verify").stdout


def test_a_backup_with_a_broken_journal_is_not_restored(make_gateway,
                                                        tmp_path):
    gw = make_gateway()
    backup = str(tmp_path / "b")
    gw.ztctl("store", "backup", backup)
    # a copy cut short (a full disk, an interrupted transfer) must not go in
    path = os.path.join(backup, "data.mdb")
    size = os.path.getsize(path)
    os.truncate(path, size // 2)
    gw.kill_trustd(signal.SIGTERM)
    before = open(os.path.join(gw.store, "data.mdb"), "rb").read()
    r = run(ZTCTL, "-c", gw.trustd_conf, "store", "restore", backup,
            check=False)
    assert r.returncode == 1
    assert open(os.path.join(gw.store, "data.mdb"), "rb").read() == before
    gw.start_trustd()


def test_rotating_the_totp_sealing_key_keeps_every_authenticator(
        make_gateway):
    gw = make_gateway(policy=POLICY, identity=True)
    gw.secret = enroll_user(gw, "alice", groups=("staff",))
    bob = enroll_user(gw, "bob")
    old = open(os.path.join(gw.keys, "secret.key"), "rb").read()

    out = ztctl_conf(gw, "keys", "rotate-secret").stdout
    assert "2 TOTP secrets re-sealed" in out
    new = open(os.path.join(gw.keys, "secret.key"), "rb").read()
    assert new != old and len(new) == len(old)
    assert not os.path.exists(os.path.join(gw.keys, "secret.key.prev"))
    assert oct(os.stat(os.path.join(gw.keys, "secret.key")).st_mode
               & 0o777) == "0o600"

    # both authenticators still work: alice's through the running trustd,
    # which reloaded, bob's after a restart (a code is single-use per user)
    avoid_step_edge()
    status, _, _ = Browser(gw).login("alice", PASSWORD,
                                     totp(gw.secret, time.time()), "/")
    assert status == 303
    restart(gw)
    avoid_step_edge()
    status, _, _ = Browser(gw).login("bob", PASSWORD, totp(bob, time.time()),
                                     "/")
    assert status == 303

    audit = gw.ztctl("audit", "search", "--action", "keys.reseal").stdout
    assert "2 TOTP secrets re-sealed" in audit


def test_an_interrupted_rotation_is_finished_by_running_it_again(
        make_gateway):
    gw = make_gateway(policy=POLICY, identity=True)
    gw.secret = enroll_user(gw, "alice")
    bob = enroll_user(gw, "bob")
    # step 1 happened (the new key is in place, the old one kept), and
    # then the re-seal did not: the old key still opens the secret
    prev = os.path.join(gw.keys, "secret.key.prev")
    cur = os.path.join(gw.keys, "secret.key")
    os.link(cur, prev)
    with open(cur + ".new", "wb") as f:
        f.write(os.urandom(32))
    os.chmod(cur + ".new", 0o600)
    os.rename(cur + ".new", cur)
    gw.reload_trustd()

    avoid_step_edge()
    status, _, _ = Browser(gw).login("alice", PASSWORD,
                                     totp(gw.secret, time.time()), "/")
    assert status == 303

    out = ztctl_conf(gw, "keys", "rotate-secret").stdout
    assert "finished rotating" in out and "2 TOTP secrets" in out
    assert not os.path.exists(prev)
    restart(gw)
    avoid_step_edge()
    status, _, _ = Browser(gw).login("bob", PASSWORD, totp(bob, time.time()),
                                     "/")
    assert status == 303
