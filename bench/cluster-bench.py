#!/usr/bin/python3
"""ztgate cluster-mode benchmark (see bench/README.md, issue 11).

Shows, in one run, that cluster mode costs nothing on the request path and
how fast a change made on one node reaches another:

1. Decision throughput.  The gateway benchmark's set-up (bench/
   gateway-bench.py: the same policy, the same 100-byte file, the same
   enrolled device, plain HTTP because wrk cannot present a client
   certificate, zt_cache off so that trustd decides every request), twice:
   one nginx in front of a single-node trustd, one nginx in front of a
   trustd in cluster mode (node A of a two-node cluster on a throw-away
   PostgreSQL).  wrk alternates the variants round by round; the report
   quotes medians and the ratio cluster / single-node (target >= 0.95).
   Plain nginx runs too, for reference.

2. Change propagation.  K changes are made on node A with ztctl (device
   quarantine / activate, alternating, on the enrolled device); node B
   reports, on its admin socket ("cluster"), the latency it measured from
   the commit time recorded by PostgreSQL to the change being applied in
   its store (p50/p99).  For a subset of the changes the benchmark also
   measures end to end: from ztctl returning on A until B's admin
   "cluster" shows a position at or past the change (polled every 1 ms).

Everything runs on 127.0.0.1 and Unix sockets in a temporary directory that
is removed at the end; every process started here (PostgreSQL, three
trustd, two nginx, wrk, ztctl) is stopped, also on failure and Ctrl-C.

Exit status: 0, or 1 when the throughput ratio misses its target (not with
--no-fail), when the setup broke, or when a measurement is invalid; 130 on
Ctrl-C.  Debian's python3, standard library only; the helpers come from
bench/gateway-bench.py.
"""

import argparse
import glob
import hashlib
import importlib.util
import os
import pwd
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def _load_gateway_bench():
    """bench/gateway-bench.py as a module (a dash in its name: importlib);
    no bytecode is written next to it."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "gateway-bench.py")
    spec = importlib.util.spec_from_file_location("gateway_bench", path)
    mod = importlib.util.module_from_spec(spec)
    dont_write = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.dont_write_bytecode = dont_write
    return mod


gb = _load_gateway_bench()
log, run, wait_for, free_port = gb.log, gb.run, gb.wait_for, gb.free_port
port_open, unix_open, parse_kv = gb.port_open, gb.unix_open, gb.parse_kv
ms, verdict = gb.ms, gb.verdict
SetupError, Invalid = gb.SetupError, gb.Invalid

VARIANTS = [
    # key, label, nginx instance
    ("plain", "0 plain nginx (reference)", "single"),
    ("single", "1 ztgate, single-node trustd", "single"),
    ("cluster", "2 ztgate, cluster-mode trustd", "cluster"),
]
LABEL = {k: label for k, label, _ in VARIANTS}

TARGET_RATIO = 0.95         # cluster / single-node decision throughput >=
POLL_INTERVAL = 0.001       # end-to-end propagation: admin poll period
CHANGE_TIMEOUT = 10.0       # a change not on B after this: invalid run
OTHER_LOAD_NOTE = gb.OTHER_LOAD_NOTE


def pg_bin(name):
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/" + name))
    if not found:
        raise SetupError("PostgreSQL's %s not found in /usr/lib/postgresql/"
                         "*/bin (scripts/install-deps.sh installs it)" % name)
    return found[-1]


def pct(values, q):
    """The q-quantile (0..1) of values, nearest rank (as trustd computes
    its own: index (n - 1) * q of the sorted values)."""
    v = sorted(values)
    return v[int((len(v) - 1) * q)]


def parse_cluster(reply):
    """trustd's admin "cluster" reply -> dict, or None when it is not in
    cluster mode.  'ok cluster on id X node N position P head H ...' (or
    'ok cluster mode on ...'): key-value pairs after the word 'on'."""
    words = (reply or "").split()
    if not words or words[0] != "ok" or "on" not in words[:4]:
        return None
    i = words.index("on") + 1
    out = {}
    while i + 1 < len(words):
        k, v = words[i], words[i + 1]
        try:
            out[k] = float(v) if "." in v else int(v)
        except ValueError:
            out[k] = v
        i += 2
    if "position" not in out or "head" not in out:
        return None
    return out


class Postgres:
    """A throw-away PostgreSQL on 127.0.0.1, TLS only, its certificate from
    the benchmark's CA (as tests/integration/test_cluster.py sets it up);
    run as the postgres user when we are root."""

    def __init__(self, top, ca_crt, server_crt, server_key):
        self.top = top
        self.dir = os.path.join(top, "pg")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.root = os.geteuid() == 0
        self.ca_crt = ca_crt
        self.src_crt, self.src_key = server_crt, server_key
        self.proc = None
        self.db = "ztbench"

    def as_pg(self, *argv, check=True, timeout=60):
        argv = list(argv)
        if self.root:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        p = subprocess.run(argv, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=timeout)
        if check and p.returncode != 0:
            raise SetupError("%s failed (%d):\n%s%s" % (
                " ".join(argv), p.returncode, p.stdout, p.stderr))
        return p

    def setup(self):
        os.chmod(self.top, 0o755)   # the postgres user goes through it
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)
        crt = os.path.join(self.dir, "server.crt")
        key = os.path.join(self.dir, "server.key")
        shutil.copyfile(self.src_crt, crt)
        shutil.copyfile(self.src_key, key)
        if self.root:
            for p in (self.dir, crt, key):
                shutil.chown(p, "postgres")
        os.chmod(key, 0o600)
        self.as_pg(pg_bin("initdb"), "-D", self.data, "-U", "ztgate",
                   "-A", "trust", "--no-sync")
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("listen_addresses = '127.0.0.1'\nport = %d\n"
                    "unix_socket_directories = '%s'\nssl = on\n"
                    "ssl_cert_file = '%s'\nssl_key_file = '%s'\n"
                    "fsync = off\nmax_connections = 40\n"
                    % (self.port, self.dir, crt, key))
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as f:
            f.write("local all all trust\n"
                    "hostssl all all 127.0.0.1/32 trust\n")
        # postgres runs as our child (through runuser), not daemonized by
        # pg_ctl: stopping it leaves nothing behind, not even a zombie
        argv = [pg_bin("postgres"), "-D", self.data]
        if self.root:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        with open(os.path.join(self.dir, "log"), "ab") as logf:
            self.proc = subprocess.Popen(argv, stdout=logf,
                                         stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        psql = shutil.which("psql") or pg_bin("psql")

        def ready():
            if self.proc.poll() is not None:
                raise SetupError("PostgreSQL exited:\n" + self.read_log())
            return port_open(self.port) and self.as_pg(
                psql, "-h", self.dir, "-p", str(self.port), "-U", "ztgate",
                "-d", "postgres", "-At", "-c", "SELECT 1",
                check=False).returncode == 0
        wait_for(ready, 30, "PostgreSQL")
        self.as_pg(psql, "-h", self.dir, "-p", str(self.port), "-U",
                   "ztgate", "-d", "postgres", "-At", "-c",
                   "CREATE DATABASE %s" % self.db)
        self.dsn = ("host=localhost hostaddr=127.0.0.1 port=%d user=ztgate "
                    "dbname=%s sslmode=verify-full sslrootcert=%s"
                    % (self.port, self.db, self.ca_crt))

    def postmaster(self):
        """The postmaster's pid while it runs, else None."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None if self.root else self.proc.pid

    def stop(self):
        """Fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL;
        the postmaster waits for its own children before it exits."""
        if self.proc is None:
            return
        for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            # the postmaster: from its pid file, else runuser's child
            pid = self.postmaster() or \
                (children(self.proc.pid) + [self.proc.pid])[0]
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                continue
        if self.proc.poll() is None:    # runuser itself
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def read_log(self):
        try:
            with open(os.path.join(self.dir, "log")) as f:
                return f.read()
        except OSError:
            return ""


def children(ppid):
    """pids whose parent is ppid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == ppid:
            out.append(int(d))
    return out


def running(pid, comm):
    """pid is alive (not a zombie) and its command name is comm."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            head, rest = f.read().rsplit(")", 1)
    except OSError:
        return False
    return head.split("(", 1)[1] == comm and rest.split()[0] != "Z"


class ClusterBench(gb.Bench):
    """Reuses gateway-bench's Bench for the PKI, spawning, logs, CPU time,
    wrk and HTTP(S) requests; the rest is the cluster's."""

    TRUSTDS = ("single", "a", "b")
    NGINXES = ("single", "cluster")

    def __init__(self, args):     # pylint: disable=super-init-not-called
        self.a = args
        self.bindir = args.bin_dir
        self.trustd = os.path.join(self.bindir, "trustd")
        self.ztctl = os.path.join(self.bindir, "ztctl")
        self.ztca = os.path.join(self.bindir, "ztca")
        self.dir = tempfile.mkdtemp(prefix="ztgate-cluster-bench-")
        self.logs = os.path.join(self.dir, "logs")
        os.makedirs(self.logs)
        self.procs = {}
        self.workers = {}
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        self.ports = {k: free_port() for k, _, _ in VARIANTS}
        self.tls_ports = {k: free_port() for k, _, _ in VARIANTS}
        self.results = {k: [] for k, _, _ in VARIANTS}
        self.decide = {"single": [], "cluster": []}
        self.notes = []
        self.pg = None
        self.t_begin = time.monotonic()
        self.deadline = self.t_begin + args.max_time

    # --- set-up -----------------------------------------------------------

    def check_tools(self):
        for p in (self.trustd, self.ztctl, self.ztca, self.a.module):
            if not os.path.exists(p):
                raise SetupError("not built: %s (run make first)" % p)
        for tool in (self.a.wrk, self.a.nginx):
            if shutil.which(tool) is None:
                raise SetupError("%s not found (apt-get install wrk nginx)"
                                 % tool)
        for name in ("initdb", "postgres"):
            pg_bin(name)

    def trustd_conf(self, name, extra=""):
        sock = os.path.join(self.dir, "trustd-%s.sock" % name)
        admin = os.path.join(self.dir, "admin-%s.sock" % name)
        store = os.path.join(self.dir, "store" if name == "single"
                             else "store-%s" % name)
        conf = os.path.join(self.dir, "trustd-%s.conf" % name)
        with open(conf, "w") as f:
            f.write("# written by bench/cluster-bench.py\n"
                    "listen %s\n"
                    "listen_mode 0660\n"
                    "peer_user %s\n"
                    "admin_listen %s\n"
                    "store %s\n"
                    "store_map_size 64M\n"
                    "log_level warn\n"
                    "log_target stderr\n"
                    "allow_ttl 2s\n"
                    "policy %s\n%s" % (sock, self.user, admin, store,
                                       self.policy_dir, extra))
        return dict(conf=conf, sock=sock, admin=admin, store=store)

    def write_files(self):
        self.www = os.path.join(self.dir, "www")
        os.makedirs(os.path.join(self.www, "device"))
        for name in ("index.html", "device/index.html"):
            with open(os.path.join(self.www, name), "wb") as f:
                f.write(gb.BODY)
        os.chmod(self.dir, 0o755)   # nginx's workers, postgres

        self.policy_dir = os.path.join(self.dir, "policy")
        os.makedirs(self.policy_dir)
        with open(os.path.join(self.policy_dir, "bench.policy"), "w") as f:
            f.write(gb.POLICY)

        # the single node's store is gateway-bench's ("store", enrolled by
        # make_pki); the cluster nodes start empty and join the database
        self.t = {"single": self.trustd_conf("single")}
        for name in ("a", "b"):
            self.t[name] = self.trustd_conf(name, (
                "cluster on\n"
                "cluster_database \"%s\"\n"
                "cluster_node node-%s\n"
                "cluster_poll_interval 200ms\n" % (self.pg.dsn, name)))

        self.nginx_conf = {}
        for inst in self.NGINXES:
            self.nginx_conf[inst] = self.write_nginx_conf(
                inst, self.t["single" if inst == "single" else "a"]["sock"],
                [k for k, _, i in VARIANTS if i == inst])

    def write_nginx_conf(self, inst, trustd_sock, keys):
        """gateway-bench's nginx set-up, one instance per trustd (zt_trustd
        is an http{}-level directive)."""
        conf = os.path.join(self.dir, "nginx-%s.conf" % inst)
        temp = "".join("    %s_temp_path %s/%s-%s;\n" % (t, self.dir, t,
                                                          inst)
                       for t in ("client_body", "proxy", "fastcgi", "uwsgi",
                                 "scgi"))
        servers = ""
        for key in keys:
            loc = "location / { }" if key == "plain" else \
                "location / {\n            zt on;\n            zt_cache off;" \
                "\n        }"
            servers += """
    server {
        listen 127.0.0.1:%d;
        listen 127.0.0.1:%d ssl;
        server_name localhost;
        ssl_certificate %s;
        ssl_certificate_key %s;
        ssl_client_certificate %s/ca.crt;
        ssl_verify_client optional;
        %s
    }
""" % (self.ports[key], self.tls_ports[key], self.server_crt,
                self.server_key, self.ca, loc)
        with open(conf, "w") as f:
            f.write("""# written by bench/cluster-bench.py
load_module %(module)s;
%(user)s
daemon off;
worker_processes auto;
worker_rlimit_nofile 8192;
error_log %(logs)s/error-%(inst)s.log warn;
pid %(dir)s/nginx-%(inst)s.pid;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    default_type text/html;
    root %(www)s;
%(temp)s
    zt_trustd unix:%(trustd)s;
    zt_cache_zone 10m max_ttl=2s;
%(servers)s}
""" % dict(module=self.a.module, logs=self.logs, dir=self.dir, inst=inst,
           user="user %s;" % self.user if os.geteuid() == 0 else "",
           www=self.www, temp=temp, trustd=trustd_sock, servers=servers))
        return conf

    def start_trustd(self, name):
        t = self.t[name]
        self.spawn("trustd-" + name, [self.trustd, "-f", "-c", t["conf"]])
        wait_for(lambda: self.alive("trustd-" + name)
                 and unix_open(t["sock"]) and unix_open(t["admin"]), 20,
                 "trustd-" + name)
        if name != "single":
            wait_for(lambda: (self.cluster(name) or {}).get("connected") == 1,
                     20, "trustd-%s to connect to the cluster database"
                     % name)

    def start_nginx(self, inst):
        conf = self.nginx_conf[inst]
        err = os.path.join(self.logs, "error-%s.log" % inst)
        run(self.a.nginx, "-t", "-q", "-p", self.dir, "-c", conf, "-e", err)
        name = "nginx-" + inst
        self.spawn(name, [self.a.nginx, "-p", self.dir, "-c", conf,
                          "-e", err])
        wait_for(lambda: self.alive(name) and all(
            port_open(self.ports[k]) for k, _, i in VARIANTS if i == inst),
            10, name)
        self.workers[inst] = children(self.procs[name].pid)

    def start(self):
        self.start_trustd("single")
        # node A seeds the empty cluster database; the device is enrolled
        # through it; node B joins afterwards (bootstrap) and follows
        self.start_trustd("a")
        self.ztctl_c("a", "device", "enroll", "--cert", self.device_crt,
                     "--owner", "alice", "--name", "bench-laptop")
        self.start_trustd("b")
        self.converge()
        for inst in self.NGINXES:
            self.start_nginx(inst)

    def stop(self):
        # nginx first (it holds connections to trustd), then trustd, then
        # the database; then make sure none of them is left
        known = {p.pid: name.split("-")[0] for name, p in self.procs.items()
                 if p.poll() is None}
        for inst in self.NGINXES:
            p = self.procs.get("nginx-" + inst)
            pids = self.workers.get(inst, []) + \
                (children(p.pid) if p is not None else [])
            known.update((pid, "nginx") for pid in pids)
        pm = self.pg.postmaster() if self.pg is not None else None
        if pm is not None:
            known.update((pid, "postgres") for pid in [pm] + children(pm))
        for name in ["nginx-" + i for i in self.NGINXES] + \
                ["trustd-" + t for t in self.TRUSTDS]:
            p = self.procs.get(name)
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGQUIT if name.startswith("nginx")
                          else signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self.pg is not None:
            self.pg.stop()
        deadline = time.monotonic() + 5
        while True:
            left = [pid for pid, comm in known.items() if running(pid, comm)]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        for pid in left:
            log("warning: process %d (%s) still ran after stopping: killed"
                % (pid, known[pid]))
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # --- probes -----------------------------------------------------------

    def admin_to(self, name, cmd):
        """One admin command to trustd-NAME: the reply, or None if it is
        unreachable.  (gateway-bench's admin() with the socket as an
        argument: the propagation poller calls it from its own thread.)"""
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(self.t[name]["admin"])
                s.sendall(cmd.encode() + b"\n")
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            return data.decode(errors="replace")
        except OSError:
            return None

    def cluster(self, name):
        return parse_cluster(self.admin_to(name, "cluster"))

    def stats(self, name, reset=False):
        st = parse_kv(self.admin_to(name, "stats-reset" if reset
                                    else "stats") or "")
        if st is None or "decisions" not in st:
            raise SetupError("trustd-%s: no admin 'stats' answer" % name)
        return st

    def ztctl_c(self, node, *args):
        """Staff tools on a cluster node go through its trustd.conf."""
        return run(self.ztctl, "-c", self.t[node]["conf"], "--actor", "bench",
                   *args, timeout=30)

    def converge(self, timeout=20):
        """Wait until both cluster nodes have applied the whole log."""
        def done():
            a, b = self.cluster("a"), self.cluster("b")
            if a is None or b is None:
                return False
            head = max(a["head"], b["head"])
            return a["position"] >= head and b["position"] >= head
        wait_for(done, timeout, "the cluster nodes to converge")

    def cpu_sample(self):
        """(machine busy seconds, seconds used by the benchmark's own
        processes, PostgreSQL's included): as gateway-bench's."""
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        busy = (v[0] + v[1] + v[2]) / os.sysconf("SC_CLK_TCK")
        ours = 0.0
        for name in self.procs:
            ours += self.cpu_seconds(name) or 0.0
        pids = [p for ws in self.workers.values() for p in ws]
        pm = self.pg.postmaster() if self.pg else None
        if pm is not None:
            pids += [pm] + children(pm)
        for pid in pids:
            ours += self.cpu_seconds(pid=pid) or 0.0
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
            ru = resource.getrusage(who)
            ours += ru.ru_utime + ru.ru_stime
        return busy, ours

    def functional_checks(self):
        """Every variant serves the file; both trustd allow /device/ to the
        enrolled device's certificate and deny it without one."""
        for key, label, _ in VARIANTS:
            st, body = self.get(key, "/index.html")
            if st != 200 or body != gb.BODY:
                raise SetupError("%s: GET /index.html answered %d"
                                 % (label, st))
            for cert, want in ((True, 200), (False, 403)):
                if key == "plain":
                    want = 200
                st, _ = self.get(key, "/device/index.html", cert=cert,
                                 tls=True)
                if st != want:
                    raise SetupError(
                        "%s: GET /device/index.html over TLS %s the device "
                        "certificate answered %d, expected %d" % (
                            label, "with" if cert else "without", st, want))
        out = self.ztctl_c("b", "device", "show", self.fp).stdout
        if "active" not in out:
            raise SetupError("node B does not show the device enrolled on "
                             "node A as active:\n" + out)
        log("functional checks passed: every variant serves the file; the "
            "single-node and the cluster trustd allow /device/ to the "
            "device (%s...) over TLS and deny it without a certificate; "
            "node B has it" % self.fp[:16])

    # --- 1. decision throughput -------------------------------------------

    def measure(self, key, rnd):
        label = LABEL[key]
        for name in self.procs:
            self.alive(name)
        node = {"single": "single", "cluster": "a"}.get(key)
        cpu0 = self.cpu_seconds("trustd-" + node) if node else None
        if node:
            self.stats(node, reset=True)

        t0 = time.monotonic()
        busy0, ours0 = self.cpu_sample()
        r = self.wrk(key, self.a.duration)
        busy1, ours1 = self.cpu_sample()
        wall = time.monotonic() - t0
        r["other_load"] = max(0.0, (busy1 - busy0) - (ours1 - ours0)) / \
            (wall * os.cpu_count())

        if r["non2xx"]:
            raise Invalid("%s, round %d: %d non-2xx/3xx answers out of %d "
                          "(see %s)" % (label, rnd, r["non2xx"],
                                        r["requests"], self.logs))
        if r["requests"] == 0:
            raise Invalid("%s, round %d: wrk completed no request"
                          % (label, rnd))
        check = ""
        if node:
            st = self.stats(node)
            n = st["decisions"]
            # in-flight requests at wrk's end are decided but not counted
            # by wrk, hence a little over 1
            if not 0.95 <= n / r["requests"] <= 1.05 + 1000.0 / \
                    r["requests"]:
                raise Invalid("%s, round %d: trustd made %d decisions for "
                              "%d requests: it was not consulted for each"
                              % (label, rnd, n, r["requests"]))
            cpu1 = self.cpu_seconds("trustd-" + node)
            self.decide[key].append(dict(
                n=n, wall=wall, p50=st.get("p50_us"), p99=st.get("p99_us"),
                cpu=(cpu1 - cpu0) if None not in (cpu0, cpu1) else None))
            check = "trustd decisions %d" % n
            if key == "cluster":
                c = self.cluster("a")
                if c is None or c.get("connected") != 1 or c.get("stale"):
                    raise Invalid("%s, round %d: node A was not connected "
                                  "to the cluster database after the run: %r"
                                  % (label, rnd, c))
        self.results[key].append(r)
        log("  round %d  %-30s %9.0f req/s  p50 %-9s p99 %-9s %s%s" % (
            rnd, label, r["rps"], ms(r["p50"]), ms(r["p99"]), check,
            ("  OTHER LOAD %.0f%%" % (100 * r["other_load"]))
            if r["other_load"] >= OTHER_LOAD_NOTE else ""))

    def throughput(self):
        keys = [k for k, _, _ in VARIANTS
                if k != "plain" or not self.a.no_plain]
        if self.a.warmup > 0:
            log("warm-up: %d s per variant" % self.a.warmup)
            for key in keys:
                r = self.wrk(key, self.a.warmup)
                if r["non2xx"]:
                    raise Invalid("%s: %d non-2xx answers during warm-up"
                                  % (LABEL[key], r["non2xx"]))
        per_round = len(keys) * (self.a.duration + 1)
        for rnd in range(1, self.a.rounds + 1):
            # keep time for the propagation part
            if rnd > 1 and time.monotonic() + per_round + \
                    self.reserve > self.deadline:
                self.notes.append("stopped after %d of %d rounds: the time "
                                  "limit (--max-time %d s) was near"
                                  % (rnd - 1, self.a.rounds,
                                     self.a.max_time))
                break
            # single and cluster swap places every round: drift and
            # order effects fall on both
            order = keys if rnd % 2 else \
                [k for k in keys if k == "plain"] + \
                [k for k in reversed(keys) if k != "plain"]
            for key in order:
                self.measure(key, rnd)

    # --- 2. change propagation --------------------------------------------

    def wait_position(self, node, seq, timeout=CHANGE_TIMEOUT):
        """Poll node's admin 'cluster' every POLL_INTERVAL until its
        position is >= seq; the perf_counter() at which it was seen."""
        deadline = time.perf_counter() + timeout
        while True:
            self.alive("trustd-" + node)
            c = self.cluster(node)
            now = time.perf_counter()
            if c is not None and c["position"] >= seq:
                return now
            if now > deadline:
                raise Invalid("node %s did not apply change %d within %.0f "
                              "s (at %r)" % (node.upper(), seq, timeout, c))
            time.sleep(POLL_INTERVAL)

    def timed_change(self, seq, argv):
        """Make one change with ztctl on node A while a thread polls node
        B; (ztctl start, ztctl returned, B seen at seq) as perf_counter()
        times.  B may apply the change before ztctl has exited."""
        out = {}

        def poll():
            try:
                out["seen"] = self.wait_position("b", seq)
            except Exception as e:      # handed to the main thread
                out["error"] = e

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        t0 = time.perf_counter()
        try:
            self.ztctl_c("a", *argv)
        finally:
            t1 = time.perf_counter()
            poller.join(CHANGE_TIMEOUT + 5)
        if "error" in out:
            raise out["error"]
        if "seen" not in out:
            raise Invalid("the poller of node B did not finish")
        return t0, t1, out["seen"]

    def propagation(self):
        k, timed_n = self.a.changes, min(self.a.timed, self.a.changes)
        step = max(1, k // timed_n) if timed_n else 0
        self.converge()
        b0 = self.cluster("b")
        head0 = b0["position"]
        samples0 = b0.get("propagation_samples", 0)
        log("propagation: %d changes on node A with ztctl (quarantine / "
            "activate), %d of them timed end to end at node B"
            % (k, timed_n))
        from_ret, from_start, calls, made = [], [], [], 0
        t_start = time.monotonic()
        for i in range(k):
            if time.monotonic() + 5 > self.deadline:
                self.notes.append("propagation: stopped after %d of %d "
                                  "changes: the time limit (--max-time %d "
                                  "s) was near" % (i, k, self.a.max_time))
                break
            timed = step and i % step == 0 and len(from_ret) < timed_n
            seq = head0 + i + 1
            argv = ("device", "quarantine" if i % 2 == 0 else "activate",
                    self.fp, "--reason", "bench %d" % i)
            if timed:
                # B idle and caught up: one change, not a backlog
                self.wait_position("b", seq - 1)
                t0, t1, seen = self.timed_change(seq, argv)
                from_ret.append(max(0.0, seen - t1))
                from_start.append(seen - t0)
            else:
                t0 = time.perf_counter()
                self.ztctl_c("a", *argv)
                t1 = time.perf_counter()
            calls.append(t1 - t0)
            made += 1
        self.wait_position("b", head0 + made)
        wall = time.monotonic() - t_start
        self.converge()
        b1, a1 = self.cluster("b"), self.cluster("a")
        # each ztctl change is one change-log entry: the targets above
        # (head0 + i + 1) were the changes themselves
        if b1["head"] != head0 + made or a1["position"] != head0 + made:
            raise Invalid("%d changes moved the change log from %d to %d "
                          "(node A at %d): not one entry per change"
                          % (made, head0, b1["head"], a1["position"]))
        if made > 0 and made % 2:       # leave the device active
            self.ztctl_c("a", "device", "activate", self.fp)
            self.converge()
        self.prop = dict(
            made=made, wall=wall, from_ret=from_ret, from_start=from_start,
            calls=calls,
            samples=b1.get("propagation_samples", 0) - samples0,
            samples_before=samples0,
            p50=b1.get("propagation_p50_ms"),
            p99=b1.get("propagation_p99_ms"))
        log("  %d changes in %.1f s; node B counted %s propagation samples"
            % (made, wall, self.prop["samples"]))

    # --- report -----------------------------------------------------------

    def report(self):
        med = {}
        log("")
        log("=" * 78)
        log("ztgate cluster benchmark (issue 11): plain HTTP on loopback, "
            "GET /index.html")
        log("(100 bytes) allowed by policy rule \"bench\", zt_cache off: "
            "trustd decides")
        log("every request; wrk -t%d -c%d -d%ds --latency, %d round(s), "
            "single and cluster" % (self.a.threads, self.a.connections,
                                    self.a.duration,
                                    len(self.results["single"])))
        log("alternating, medians; nginx (worker_processes auto), trustd, "
            "PostgreSQL and wrk")
        log("share %d CPUs. Cluster: 2 nodes on one PostgreSQL %s over TLS."
            % (os.cpu_count(), self.pg_version))
        log("=" * 78)
        log("%-31s %9s %9s %9s   %s" % ("variant", "req/s", "p50", "p99",
                                        "req/s per round"))
        for key, label, _ in VARIANTS:
            rs = self.results[key]
            if not rs:
                continue
            med[key] = statistics.median(x["rps"] for x in rs)
            log("%-31s %9.0f %9s %9s   %s" % (
                label, med[key],
                ms(statistics.median(x["p50"] for x in rs)),
                ms(statistics.median(x["p99"] for x in rs)),
                " ".join("%.0f" % x["rps"] for x in rs)))
        log("")
        ratio = None
        if med.get("single") and "cluster" in med:
            ratio = med["cluster"] / med["single"]
            per_round = [c["rps"] / s["rps"] for s, c in
                         zip(self.results["single"], self.results["cluster"])]
            log("%-46s %6.3f   target >= %.2f   %s" % (
                "ratio 2/1 (cluster / single-node)", ratio, TARGET_RATIO,
                verdict(ratio >= TARGET_RATIO)))
            log("  per round (paired): %s; median %.3f" % (
                " ".join("%.3f" % x for x in per_round),
                statistics.median(per_round)))
            if med.get("plain"):
                log("%-46s %6.3f   (reference)" % (
                    "ratio 1/0 (single-node / plain nginx)",
                    med["single"] / med["plain"]))
                log("%-46s %6.3f   (reference)" % (
                    "ratio 2/0 (cluster / plain nginx)",
                    med["cluster"] / med["plain"]))
        for key in ("single", "cluster"):
            d = self.decide[key]
            if not d:
                continue
            cpu = [x["cpu"] / x["wall"] for x in d if x["cpu"]]
            log("trustd %-8s %7.0f decisions/s, decide() p50 %.2f us p99 "
                "%.2f us%s" % (
                    key + ":", statistics.median(x["n"] / x["wall"]
                                                 for x in d),
                    statistics.median(x["p50"] for x in d),
                    statistics.median(x["p99"] for x in d),
                    ", %.0f%% of one core" % (100 * statistics.median(cpu))
                    if cpu else ""))
        log("")

        p = getattr(self, "prop", None)
        if p:
            log("change propagation, node A -> node B (%d ztctl changes on "
                "A, device quarantine/activate):" % p["made"])
            if p["p50"] is not None:
                log("  %-52s p50 %6.1f ms  p99 %6.1f ms" % (
                    "measured by trustd on B (PostgreSQL commit -> applied)",
                    p["p50"], p["p99"]))
                log("    %d samples in this phase%s" % (
                    p["samples"],
                    "" if not p["samples_before"] else
                    " (+%d earlier in the same window)"
                    % p["samples_before"]))
            if p["from_ret"]:
                e, e0 = p["from_ret"], p["from_start"]
                log("  %-52s p50 %6.1f ms  p99 %6.1f ms" % (
                    "end to end: ztctl returned on A -> applied on B",
                    1000 * pct(e, 0.5), 1000 * pct(e, 0.99)))
                log("  %-52s p50 %6.1f ms  p99 %6.1f ms" % (
                    "end to end: ztctl started on A -> applied on B",
                    1000 * pct(e0, 0.5), 1000 * pct(e0, 0.99)))
                log("    %d timed changes, B's admin 'cluster' polled every "
                    "%.0f ms; B had applied %d of them before ztctl "
                    "returned (counted as 0)" % (
                        len(e), 1000 * POLL_INTERVAL,
                        sum(1 for x in e if x == 0.0)))
            if p["calls"]:
                c = p["calls"]
                log("  %-52s p50 %6.1f ms  p99 %6.1f ms" % (
                    "one ztctl call on A (process start to exit)",
                    1000 * pct(c, 0.5), 1000 * pct(c, 0.99)))
        busy = [x["other_load"] for rs in self.results.values() for x in rs
                if x["other_load"] >= OTHER_LOAD_NOTE]
        if busy:
            log("note: other processes used the CPUs during %d run(s) (up "
                "to %.0f%% of the machine, marked OTHER LOAD above): those "
                "numbers are disturbed; rerun on a quiet machine"
                % (len(busy), 100 * max(busy)))
        for n in self.notes:
            log("note: " + n)
        for inst in self.NGINXES:
            bad = [line for line in self.read_log("error-" + inst)
                   .splitlines() if "[alert]" in line or "[emerg]" in line
                   or "[crit]" in line]
            if bad:
                log("note: nginx-%s's error log has %d alert/crit/emerg "
                    "lines, first: %s" % (inst, len(bad), bad[0].strip()))
        log("whole run: %.0f s" % (time.monotonic() - self.t_begin))
        log("=" * 78)
        return ratio

    def dump_logs(self):
        for name in sorted(self.procs) + ["error-single", "error-cluster"]:
            text = self.read_log(name)
            if text.strip():
                log("--- %s log (last lines) ---\n%s" % (
                    name, "\n".join(text.splitlines()[-15:])))
        if self.pg is not None:
            text = self.pg.read_log()
            if text.strip():
                log("--- postgresql log (last lines) ---\n%s"
                    % "\n".join(text.splitlines()[-15:]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5,
                    help="measured rounds, each runs every variant once "
                         "(default 5)")
    ap.add_argument("--duration", type=int, default=5,
                    help="seconds per wrk run (default 5)")
    ap.add_argument("--connections", type=int, default=64,
                    help="wrk connections (default 64)")
    ap.add_argument("--threads", type=int, default=2,
                    help="wrk threads (default 2)")
    ap.add_argument("--warmup", type=int, default=2,
                    help="seconds of warm-up per variant (default 2)")
    ap.add_argument("--no-plain", action="store_true",
                    help="leave out the plain nginx reference")
    ap.add_argument("--changes", type=int, default=200,
                    help="changes made on node A for the propagation "
                         "latency (default 200)")
    ap.add_argument("--timed", type=int, default=50,
                    help="of those, changes timed end to end at node B "
                         "(default 50)")
    ap.add_argument("--no-fail", action="store_true",
                    help="exit 0 even when the throughput ratio misses "
                         "its target")
    ap.add_argument("--max-time", type=int, default=170,
                    help="stop starting rounds and changes after this "
                         "many seconds (default 170)")
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "build"),
                    help="where trustd, ztctl and ztca are")
    ap.add_argument("--module",
                    default=os.path.join(ROOT, "build",
                                         "ngx_http_zt_module.so"))
    ap.add_argument("--nginx", default="/usr/sbin/nginx")
    ap.add_argument("--wrk", default="wrk")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary directory (logs, configs)")
    a = ap.parse_args()
    if a.rounds < 1 or a.duration < 1 or a.connections < 1 or a.threads < 1:
        ap.error("rounds, duration, connections and threads must be >= 1")
    if a.connections < a.threads:
        ap.error("wrk needs at least one connection per thread")
    if a.changes < 1 or a.timed < 0:
        ap.error("--changes must be >= 1 and --timed >= 0")

    # Ctrl-C and SIGTERM both end up in the finally below
    signal.signal(signal.SIGTERM, gb.on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    b = ClusterBench(a)
    rc = 0
    try:
        b.check_tools()
        log("setting up in %s" % b.dir)
        b.make_pki()                # gateway-bench's: CA, certs, "store"
        b.fp = hashlib.sha256(ssl.PEM_cert_to_DER_cert(
            open(b.device_crt).read())).hexdigest()
        b.pg = Postgres(b.dir, os.path.join(b.ca, "ca.crt"), b.server_crt,
                        b.server_key)
        b.pg.setup()
        b.pg_version = os.path.basename(os.path.dirname(os.path.dirname(
            pg_bin("postgres"))))
        b.write_files()
        b.start()
        b.functional_checks()
        # time kept for part 2: a ztctl call is some tens of ms
        b.reserve = 15 + 0.1 * a.changes
        b.throughput()
        b.propagation()
        ratio = b.report()
        if ratio is None:
            raise Invalid("no throughput measured")
        if ratio < TARGET_RATIO and not a.no_fail:
            rc = 1
    except KeyboardInterrupt:
        log("interrupted")
        rc = 130
    except Invalid as e:
        log("")
        log("!" * 78)
        log("INVALID MEASUREMENT: %s" % e)
        log("!" * 78)
        b.dump_logs()
        rc = 1
    except (SetupError, subprocess.TimeoutExpired, OSError) as e:
        log("SETUP FAILED: %s" % e)
        b.dump_logs()
        rc = 1
    finally:
        # no second Ctrl-C in the middle of stopping what was started
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            b.stop()
        finally:
            b.cleanup()
            reap()
    return rc


def reap(timeout=2.0):
    """Collect children left unwaited (a wrk or ztctl that subprocess
    killed on Ctrl-C), so that none stays behind as a zombie."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)


if __name__ == "__main__":
    sys.exit(main())
