"""Cluster mode (issue 11): a real PostgreSQL started here on loopback,
reached over TLS with a certificate from ztgate's own CA, two (or three)
gateways, each a real nginx with the module and a real trustd with its own
LMDB copy.  Revocation, sessions, TOTP replay and lockout hold across
nodes; a stopped node catches up in order; a new node bootstraps and
answers like the others; with the database gone decisions go on from
LMDB, writes are refused, and the staleness limit fails a cut-off node
closed."""

import glob
import json
import re
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import Gateway, ZTCA, ZTCTL, free_port, run, wait_for
from test_identity import (PASSWORD, POLICY, Browser, avoid_step_edge,
                           enroll_user, totp)


def pg_bin(name):
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/" + name))
    assert found, ("PostgreSQL's %s not found: run scripts/install-deps.sh"
                   % name)
    return found[-1]


class Postgres:
    """A throw-away PostgreSQL cluster on 127.0.0.1, TLS only."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ztgate-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.root = os.geteuid() == 0
        self.ndb = 0

    def as_pg(self, *argv, check=True):
        argv = list(argv)
        if self.root:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        return subprocess.run(argv, check=check, capture_output=True,
                              text=True, stdin=subprocess.DEVNULL)

    def setup(self):
        # the server certificate comes from ztgate's own CA
        ca = os.path.join(self.dir, "ca")
        run(ZTCA, "init", "-d", ca, "--cn", "ztgate test database CA")
        self.ca_crt = os.path.join(ca, "ca.crt")
        crt = os.path.join(self.dir, "server.crt")
        key = os.path.join(self.dir, "server.key")
        run(ZTCA, "server", "-d", ca, "--key", key, "--cert", crt,
            "--dns", "localhost", "--ip", "127.0.0.1")
        os.chmod(self.dir, 0o755)
        if self.root:
            shutil.chown(self.dir, "postgres")
            shutil.chown(crt, "postgres")
            shutil.chown(key, "postgres")
        os.chmod(key, 0o600)
        self.as_pg(pg_bin("initdb"), "-D", self.data, "-U", "ztgate",
                   "-A", "trust", "--no-sync")
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("listen_addresses = '127.0.0.1'\nport = %d\n"
                    "unix_socket_directories = '%s'\nssl = on\n"
                    "ssl_cert_file = '%s'\nssl_key_file = '%s'\n"
                    "fsync = off\nmax_connections = 60\n"
                    % (self.port, self.dir, crt, key))
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as f:
            f.write("local all all trust\n"
                    "hostssl all all 127.0.0.1/32 trust\n")
        self.start()

    def start(self):
        self.as_pg(pg_bin("pg_ctl"), "-D", self.data, "-l",
                   os.path.join(self.dir, "log"), "-w", "start")

    def stop(self):
        self.as_pg(pg_bin("pg_ctl"), "-D", self.data, "-m", "fast", "-w",
                   "stop", check=False)

    def psql(self, db, sql):
        return self.as_pg(shutil.which("psql") or pg_bin("psql"), "-h",
                          self.dir, "-p", str(self.port), "-U", "ztgate",
                          "-d", db, "-At", "-c", sql).stdout

    def new_database(self):
        self.ndb += 1
        name = "zt%d_%d" % (os.getpid(), self.ndb)
        self.psql("postgres", "CREATE DATABASE %s" % name)
        return ("host=localhost hostaddr=127.0.0.1 port=%d user=ztgate "
                "dbname=%s sslmode=verify-full sslrootcert=%s"
                % (self.port, name, self.ca_crt)), name

    def teardown(self):
        self.as_pg(pg_bin("pg_ctl"), "-D", self.data, "-m", "immediate",
                   "-w", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def pg():
    p = Postgres()
    try:
        p.setup()
        yield p
    finally:
        p.teardown()


class Node(Gateway):
    """A gateway in cluster mode; nodes after the first share its CA and
    identity keys, as an agency's configuration management would copy
    them."""

    def __init__(self, tmp, dsn, name, first=None, extra="", **kw):
        kw["trustd_extra"] = (
            'cluster on\ncluster_database "%s"\ncluster_node %s\n'
            'cluster_poll_interval 200ms\nallow_ttl 100ms\n%s'
            % (dsn, name, extra))
        super().__init__(tmp, **kw)
        self.first = first
        if first is not None:
            self.keys = first.keys

    def make_pki(self):
        if self.first is None:
            return super().make_pki()
        self.ca = self.first.ca
        self.server_key = self.first.server_key
        self.server_crt = self.first.server_crt

    def ztctl(self, *args, check=True):
        """Staff tools on a node go through its trustd.conf."""
        return run(ZTCTL, "-c", self.trustd_conf, "--actor", "pytest",
                   *args, check=check)

    def admin(self, cmd):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.admin_sock)
            s.sendall(cmd.encode() + b"\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return data.decode()

    def cluster(self):
        words = self.admin("cluster").split()
        assert words[:4] == ["ok", "cluster", "mode", "on"], words
        return {words[i]: words[i + 1] for i in range(4, len(words) - 1, 2)}

    def position(self):
        return int(self.cluster()["position"])


@pytest.fixture
def cluster(tmp_path, pg):
    """make(n, **kw) -> n started nodes on one fresh database."""
    nodes = []
    state = {}

    def make(n=2, **kw):
        if "dsn" not in state:
            state["dsn"], state["db"] = pg.new_database()
        made = []
        for _ in range(n):
            i = len(nodes)
            node = Node(tmp_path / ("node%d" % i), state["dsn"],
                        "node-%d" % i, first=nodes[0] if nodes else None,
                        **kw)
            nodes.append(node)
            node.start()
            made.append(node)
        return made

    make.pg = pg
    make.state = state
    make.nodes = nodes
    yield make

    if pg.data and not os.path.exists(os.path.join(pg.data,
                                                   "postmaster.pid")):
        pg.start()
    bad = []
    for node in nodes:
        node.stop()
        bad += node.bad_log_lines()
    assert not bad, "bad log lines:\n" + "\n".join(bad)


def converge(*nodes, timeout=10):
    """Wait until every node has applied the database's whole change log."""
    def done():
        head = max(int(n.cluster()["head"]) for n in nodes)
        return all(n.position() >= head for n in nodes)
    wait_for(done, timeout=timeout, what="the nodes to converge")


# --- devices -----------------------------------------------------------------

def test_a_device_revoked_on_one_node_is_denied_on_the_other_within_1s(
        cluster):
    a, b = cluster(2)
    crt = a.issue_device("laptop")
    fp = a.enroll(crt[0])
    wait_for(lambda: b.get("/doc", cert=crt).status == 200, timeout=5,
             what="node B to allow the device enrolled on node A")

    t0 = time.monotonic()
    a.ztctl("device", "revoke", fp)
    while b.get("/doc", cert=crt).status != 403:
        assert time.monotonic() - t0 < 1.0, "node B still allows it"
        time.sleep(0.02)

    assert time.monotonic() - t0 < 1.0
    assert a.get("/doc", cert=crt).status == 403


def test_every_change_is_in_the_database_change_log_with_who_made_it(
        cluster):
    a, b = cluster(2)
    crt = a.issue_device("laptop")
    fp = a.enroll(crt[0])
    b.ztctl("device", "quarantine", fp)

    rows = cluster.pg.psql(cluster.state["db"],
                           "SELECT node, actor, action FROM zt_changes "
                           "ORDER BY seq").split()
    assert rows == ["node-0|pytest|device.enroll",
                    "node-1|pytest|device.quarantine"]
    converge(a, b)
    assert "quarantined" in a.ztctl("device", "show", fp).stdout


def test_a_node_copy_refuses_a_write_that_bypasses_the_cluster(cluster):
    a, b = cluster(2)
    crt = a.issue_device("laptop")
    fp = a.enroll(crt[0])
    converge(a, b)

    p = run(ZTCTL, "-s", b.store, "--actor", "mallory", "device", "revoke",
            fp, check=False)

    assert p.returncode != 0
    assert "cluster node's copy" in p.stderr
    assert b.get("/doc", cert=crt).status == 200
    assert "active" in b.ztctl("device", "show", fp).stdout


# --- identity ----------------------------------------------------------------

@pytest.fixture
def icluster(cluster):
    a, b = cluster(2, policy=POLICY, identity=True)
    a.secret = enroll_user(a, "alice", groups=("staff",))
    b.secret = a.secret
    converge(a, b)
    return a, b


def test_a_session_made_on_one_node_works_on_the_other(icluster):
    a, b = icluster
    avoid_step_edge()
    ba = Browser(a)
    status, _, _ = ba.login("alice", PASSWORD, totp(a.secret, time.time()))
    assert status == 303

    bb = Browser(b)
    bb.cookies = dict(ba.cookies)
    wait_for(lambda: bb.request("GET", "/doc")[0] == 200, timeout=2,
             what="node B to know the session")
    status, _, body = bb.request("GET", "/doc")
    assert b'"alice"' in body

    # signing out on B ends the session on A too
    fields = bb.form("/zt/logout")
    assert bb.request("POST", "/zt/logout", body=fields)[0] in (200, 303)
    wait_for(lambda: ba.request("GET", "/doc")[0] == 302, timeout=2,
             what="node A to see the sign-out")


def test_a_totp_code_used_on_one_node_is_refused_on_the_other(icluster):
    a, b = icluster
    avoid_step_edge()
    code = totp(a.secret, time.time())

    assert Browser(a).login("alice", PASSWORD, code)[0] == 303
    status, _, _ = Browser(b).login("alice", PASSWORD, code)

    assert status == 403
    # and the next code still works there
    assert Browser(b).login("alice", PASSWORD,
                            totp(a.secret, time.time() + 30))[0] == 303


def test_failed_sign_ins_are_counted_across_nodes(icluster):
    a, b = icluster
    for i in range(5):       # lockout_threshold 5: alternate the nodes
        node = a if i % 2 == 0 else b
        assert Browser(node).login("alice", "wrong password!!",
                                   "000000")[0] == 403

    avoid_step_edge()
    for node in (a, b):
        status, _, _ = Browser(node).login("alice", PASSWORD,
                                           totp(a.secret, time.time()))
        assert status == 403
    assert "locked" in b.ztctl("user", "show", "alice").stdout.lower()


# --- catching up, bootstrapping ----------------------------------------------

def test_a_stopped_node_gets_every_change_in_order_after_restart(cluster):
    a, b = cluster(2)
    crts = [a.issue_device("d%d" % i) for i in range(4)]
    fps = [a.enroll(c[0]) for c in crts[:1]]
    converge(a, b)
    b.kill_trustd(signal.SIGKILL)

    fps += [a.enroll(c[0]) for c in crts[1:]]
    a.ztctl("device", "revoke", fps[1])
    a.ztctl("device", "quarantine", fps[2])
    a.ztctl("device", "activate", fps[2])
    head = int(a.cluster()["head"])

    b.start_trustd()
    wait_for(lambda: b.position() == head, timeout=10,
             what="node B to catch up")

    want = [200, 403, 200, 200]
    assert [b.get("/doc", cert=c).status for c in crts] == want
    assert [a.get("/doc", cert=c).status for c in crts] == want
    # the store recorded where it stopped: nothing applied twice or skipped
    assert int(b.cluster()["applied"]) == head - 1


def requests_for(node, crts):
    return [(node.get(path, cert=c).status)
            for c in crts + [None] for path in ("/", "/doc?x=1")]


def test_a_new_node_bootstraps_and_answers_like_the_others(cluster):
    a, b = cluster(2)
    crts = [a.issue_device("d%d" % i) for i in range(3)]
    fps = [a.enroll(c[0]) for c in crts[:2]]     # d2 never enrolled
    b.ztctl("device", "revoke", fps[1])
    converge(a, b)

    (c,) = cluster(1)
    assert int(c.cluster()["bootstraps"]) == 1
    assert "bootstrapped this node" in c.trustd_log()
    converge(a, b, c)

    expected = requests_for(a, crts)
    assert expected == [200, 200, 403, 403, 403, 403, 403, 403]
    assert requests_for(b, crts) == expected
    assert requests_for(c, crts) == expected


# --- the database out of reach -------------------------------------------------

def test_without_the_database_decisions_go_on_and_writes_are_refused(cluster):
    a, b = cluster(2)
    crt = a.issue_device("laptop")
    other = a.issue_device("desktop")
    a.enroll(crt[0])
    converge(a, b)

    cluster.pg.stop()
    try:
        wait_for(lambda: b.cluster()["connected"] == "0", timeout=5,
                 what="node B to notice")
        assert b.get("/doc", cert=crt).status == 200       # from LMDB
        assert a.get("/doc", cert=crt).status == 200

        p = b.ztctl("device", "enroll", "--cert", other[0], "--owner", "bob",
                    check=False)
        assert p.returncode != 0
        assert "cluster database" in p.stderr
        assert "nothing was changed" in p.stderr
        assert b.get("/doc", cert=other).status == 403
        assert int(b.cluster()["lag"]) == 0
    finally:
        cluster.pg.start()

    wait_for(lambda: b.cluster()["connected"] == "1", timeout=10,
             what="node B to reconnect")
    b.enroll(other[0], owner="bob")
    converge(a, b)
    assert a.get("/doc", cert=other).status == 200
    assert b.get("/doc", cert=other).status == 200


def test_a_node_cut_off_past_the_staleness_limit_fails_closed(cluster):
    a, b = cluster(2, extra="cluster_max_staleness 2s\n")
    crt = a.issue_device("laptop")
    a.enroll(crt[0])
    converge(a, b)

    cluster.pg.stop()
    try:
        assert b.get("/doc", cert=crt).status == 200
        wait_for(lambda: b.get("/doc", cert=crt).status == 503, timeout=6,
                 what="node B to fail closed")
        assert b.cluster()["stale"] == "1"
    finally:
        cluster.pg.start()

    wait_for(lambda: b.get("/doc", cert=crt).status == 200, timeout=10,
             what="node B to serve again once the feed is back")
    assert b.cluster()["stale"] == "0"


def test_the_database_is_reached_over_verified_tls_only(cluster, tmp_path):
    (a,) = cluster(1)
    assert "sslmode=verify-full" in cluster.state["dsn"]

    # pg_hba.conf accepts TLS only: a node configured without it cannot
    # start, and says why
    plain = cluster.state["dsn"].replace("sslmode=verify-full",
                                         "sslmode=disable")
    bad = Node(tmp_path / "plain", plain, "plain", first=a)
    bad.make_pki()
    bad.write_trustd_conf()
    p = subprocess.run([os.path.join(os.path.dirname(ZTCTL), "trustd"), "-f",
                        "-c", bad.trustd_conf], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode != 0
    assert "cannot connect to the cluster database" in p.stderr
    assert "no encryption" in p.stderr or "pg_hba.conf" in p.stderr


def test_status_and_metrics_say_how_far_behind_a_node_is(cluster):
    a, b = cluster(2)
    crt = a.issue_device("laptop")
    fp = a.enroll(crt[0])
    converge(a, b)

    p = b.ztctl("status", "--json")
    st = json.loads(p.stdout)["trustd"]["cluster"]
    assert st["mode"] == "on" and st["node"] == "node-1"
    assert st["position"] == st["head"] and st["lag"] == 0
    assert st["connected"] == 1 and st["stale"] == 0
    assert "trustd cluster: mode on" in b.ztctl("status").stdout

    b.procs["trustd"].send_signal(signal.SIGSTOP)   # the feed stops moving
    try:
        a.ztctl("device", "quarantine", fp)
        a.ztctl("device", "activate", fp)
    finally:
        b.procs["trustd"].send_signal(signal.SIGCONT)
    converge(a, b)
    st = b.cluster()
    assert int(st["applied"]) == 3 and int(st["propagation_samples"]) == 3
    assert float(st["propagation_p99_ms"]) < 1000
    metrics = b.admin("metrics")
    for family in ("position", "lag_changes", "feed_connected",
                   "feed_age_seconds", "stale", "changes_applied_total",
                   "bootstraps_total"):
        assert re.search(r"(?m)^ztgate_cluster_%s -?[0-9.]+$" % family,
                         metrics), family
    assert re.search(r'(?m)^ztgate_cluster_writes_total\{result="refused"\} '
                     r'0$', metrics)


def test_cluster_nodes_lists_the_nodes_and_marks_a_different_policy(
        icluster):
    a, b = icluster

    def nodes():
        return json.loads(a.ztctl("cluster", "nodes", "--json").stdout)

    wait_for(lambda: len(nodes()["nodes"]) == 2, timeout=10,
             what="both nodes to report")
    got = nodes()
    assert got["head"] == a.position()
    assert [n["node"] for n in got["nodes"]] == ["node-0", "node-1"]
    assert not any(n["policy_differs"] for n in got["nodes"])

    b.write_policy(POLICY.replace("mfa_age > 3s", "mfa_age > 4s"))
    b.reload_trustd()
    wait_for(lambda: [n["policy_differs"] for n in nodes()["nodes"]]
             == [False, True] or [n["policy_differs"]
                                  for n in nodes()["nodes"]] == [True, False],
             timeout=5, what="the policy change to show")
    assert "! differs" in a.ztctl("cluster", "nodes").stdout


def test_a_node_can_leave_the_cluster_and_run_alone(cluster):
    a, b = cluster(2)
    crt = a.issue_device("laptop")
    fp = a.enroll(crt[0])
    converge(a, b)

    p = b.ztctl("cluster", "leave", check=False)
    assert p.returncode != 0 and "trustd is running" in p.stderr

    b.kill_trustd(signal.SIGTERM)
    p = b.ztctl("cluster", "leave")
    assert "left cluster" in p.stdout

    # a single-node store again: writes without the database are its own
    run(ZTCTL, "-s", b.store, "--actor", "pytest", "device", "revoke", fp)
    assert "active" in a.ztctl("device", "show", fp).stdout


@pytest.mark.parametrize("lines, message", [
    ("cluster on\n", "cluster on needs cluster_database"),
    ("cluster maybe\n", 'cluster "maybe": expected on or off'),
    ('cluster on\ncluster_database "x"\ncluster_node "a b"\n',
     'cluster_node "a b"'),
    ('cluster on\ncluster_database "x"\ncluster_max_staleness 10ms\n',
     "cluster_max_staleness"),
])
def test_cluster_settings_are_checked(tmp_path, lines, message):
    conf = tmp_path / "trustd.conf"
    conf.write_text("listen %s/s\npeer_user root\nstore %s/store\n%s"
                    % (tmp_path, tmp_path, lines))
    trustd = os.path.join(os.path.dirname(ZTCTL), "trustd")

    p = run(trustd, "-n", "-c", str(conf), check=False)

    assert p.returncode != 0
    assert message in p.stderr


def test_a_cluster_store_is_not_run_as_a_single_node_by_mistake(cluster):
    a, b = cluster(2)
    b.kill_trustd(signal.SIGTERM)
    with open(b.trustd_conf) as f:
        conf = f.read().replace("cluster on\n", "cluster off\n")
    with open(b.trustd_conf, "w") as f:
        f.write(conf)

    trustd = os.path.join(os.path.dirname(ZTCTL), "trustd")
    p = subprocess.run([trustd, "-f", "-c", b.trustd_conf],
                       capture_output=True, text=True, timeout=30)

    assert p.returncode != 0
    assert "follows cluster" in p.stderr and "cluster leave" in p.stderr


def test_a_database_restored_and_written_again_is_not_followed_blindly(
        cluster):
    a, b = cluster(2)
    crt = a.issue_device("laptop")
    a.enroll(crt[0])
    converge(a, b)
    b.kill_trustd(signal.SIGTERM)

    # as if restored from a backup taken before change 1, then written
    # again: change 1 exists, but it is not the one the nodes applied
    db = cluster.state["db"]
    cluster.pg.psql(db, "DELETE FROM zt_changes; DELETE FROM zt_kv; "
                        "UPDATE zt_cluster SET head = 0")
    cluster.pg.psql(db, "SELECT * FROM zt_commit('restore', '', '', '', "
                        "ARRAY['blocklist'], ARRAY['\\x01'::bytea], "
                        "ARRAY[NULL::bytea])")

    trustd = os.path.join(os.path.dirname(ZTCTL), "trustd")
    p = subprocess.run([trustd, "-f", "-c", b.trustd_conf],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "is not the one this node applied" in p.stderr

    # the running node stops following it (and fails closed in time)
    wait_for(lambda: "is not the one this node applied" in a.trustd_log(),
             timeout=5, what="node A to notice")
    assert a.cluster()["connected"] == "0"

    # and writes no change decided on its stale copy
    other = a.issue_device("desktop")
    p = a.ztctl("device", "enroll", "--cert", other[0], "--owner", "bob",
                check=False)
    assert p.returncode != 0
    assert "is not the one this node applied" in p.stderr
    assert "nothing was changed" in p.stderr
    assert cluster.pg.psql(db, "SELECT head FROM zt_cluster").strip() == "1"


def test_a_single_node_gateway_converts_in_place_and_seeds_the_cluster(
        make_gateway, pg, tmp_path):
    gw = make_gateway()
    crts = [gw.issue_device("d%d" % i) for i in range(3)]
    fps = [gw.enroll(c[0]) for c in crts]
    gw.ztctl("device", "revoke", fps[2])
    gw.kill_trustd(signal.SIGTERM)

    dsn, db = pg.new_database()
    with open(gw.trustd_conf, "a") as f:
        f.write('cluster on\ncluster_database "%s"\ncluster_node first\n'
                "cluster_poll_interval 200ms\n" % dsn)
    gw.start_trustd()
    wait_for(lambda: "seeded the empty cluster database with this node's "
             "3 records" in gw.trustd_log(), timeout=5,
             what="the first node to seed the cluster")
    assert pg.psql(db, "SELECT count(*) FROM zt_kv WHERE db = 'devices'"
                   ).strip() == "3"

    b = Node(tmp_path / "b", dsn, "second", first=gw)
    try:
        b.start()
        assert "bootstrapped this node" in b.trustd_log()
        assert [b.get("/doc", cert=c).status for c in crts] == \
            [200, 200, 403]
        b.ztctl("device", "quarantine", fps[0])
        wait_for(lambda: gw.get("/doc", cert=crts[0]).status == 403,
                 timeout=2, what="the first node to follow the second")
    finally:
        b.stop()
    assert not b.bad_log_lines()
