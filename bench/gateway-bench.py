#!/usr/bin/python3
"""ztgate gateway throughput benchmark (see bench/README.md).

Sets up, in a temporary directory, a device CA, a server certificate, an
enrolled device, trustd with a small policy, the HTTP authorizer
(build/bench/authz, trustd's decision code behind HTTP) and ONE nginx with
four servers that serve the same 100-byte static file:

  1 plain        no access control (the baseline)
  2 zt-cache     zt on, decision cache on (a warm, repeated request)
  3 zt-nocache   zt on, zt_cache off: every request decided by trustd
  4 auth-request auth_request to the authorizer (upstream keepalive)

Then it runs wrk on loopback, alternating the variants round by round, and
prints medians, ratios against the targets, trustd's own decision latency
(admin "stats"), and how fast a dead trustd is answered.

It is a report, not a test: the exit status is 0 whatever the numbers,
1 when the setup broke or a measurement is invalid (non-2xx answers, trustd
not consulted), 130 on Ctrl-C.  Debian's python3, standard library only.
"""

import argparse
import hashlib
import http.client
import os
import pwd
import re
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

VARIANTS = [
    # key, label
    ("plain", "1 plain nginx (baseline)"),
    ("zt-cache", "2 ztgate, cache on"),
    ("zt-nocache", "3 ztgate, cache off"),
    ("authreq", "4 auth_request + authz"),
]

TARGETS = {
    "ratio_cache": 0.90,        # 2/1 >=
    "ratio_nocache": 0.55,      # 3/1 >=
    "ratio_vs_authreq": 1.2,    # 3/4 >=
    "trustd_p50_us": 3.0,       # <=
    "trustd_p99_us": 15.0,      # <=
    "dead_ms": 5.0,             # <=
}

# a run during which other processes used this share of the machine is
# marked: its numbers are disturbed
OTHER_LOAD_NOTE = 0.05

BODY = (b"<!doctype html><title>ztgate bench</title>"
        b"<p>The same small static file for every variant.</p>\n")
BODY = BODY + b"." * (99 - len(BODY)) + b"\n"      # exactly 100 bytes

POLICY = """\
# The benchmark's policy.  wrk cannot present a client certificate, so the
# measured request is allowed by its source address; the device rule is
# exercised by the functional checks before the measurement.
app "bench" {
    host "*"

    rule "enrolled devices" {
        path prefix "/device/"
        when device.status == active
        allow
    }

    rule "bench" {
        path "/index.html"
        when source in (127.0.0.0/8)
        allow
    }
}
"""


class SetupError(Exception):
    pass


class Invalid(Exception):
    """A measurement that cannot be trusted (not a missed target)."""


def log(msg):
    print(msg, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise SetupError("timed out waiting for " + what)


def run(*argv, timeout=60):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise SetupError("%s failed (%d):\n%s%s" % (
            " ".join(argv), p.returncode, p.stdout, p.stderr))
    return p


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def unix_open(path):
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(0.2)
            s.connect(path)
        return True
    except OSError:
        return False


def parse_duration(text):
    """wrk's latency: '683.00us', '2.59ms', '1.02s', '1.00m' -> seconds."""
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError("cannot parse wrk duration %r" % text)
    v = float(m.group(1))
    return v * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(2)]


def parse_wrk(out):
    r = {"non2xx": 0, "socket_errors": 0}
    m = re.search(r"^Requests/sec:\s+([0-9.]+)", out, re.M)
    if not m:
        raise Invalid("no Requests/sec in wrk's output:\n" + out)
    r["rps"] = float(m.group(1))
    m = re.search(r"^\s+(\d+) requests in ([0-9.]+\w+)", out, re.M)
    r["requests"] = int(m.group(1)) if m else 0
    for q in ("50", "99"):
        m = re.search(r"^\s+%s%%\s+(\S+)" % q, out, re.M)
        if not m:
            raise Invalid("no %s%% latency in wrk's output:\n%s" % (q, out))
        r["p" + q] = parse_duration(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                  r"timeout (\d+)", out)
    if m:
        r["socket_errors"] = sum(int(x) for x in m.groups())
    return r


def parse_kv(text):
    """'ok decisions 12 p50_us 1.8 ...' or 'ok decisions=12 ...' -> dict
    (numbers as floats), or None if the reply is not 'ok ...'."""
    words = text.split()
    if not words or words[0] != "ok":
        return None
    out = {}
    i = 1
    while i < len(words):
        w = words[i]
        if "=" in w:
            k, v = w.split("=", 1)
            i += 1
        elif i + 1 < len(words):
            k, v = w, words[i + 1]
            i += 2
        else:
            break
        try:
            out[k] = float(v)
        except ValueError:
            out[k] = v
    return out


def ms(seconds):
    return "%.2f ms" % (seconds * 1000.0) if seconds >= 1e-3 else \
        "%.0f us" % (seconds * 1e6)


def verdict(ok):
    if ok is None:
        return "n/a"
    return "PASS" if ok else "FAIL"


class Bench:
    def __init__(self, args):
        self.a = args
        self.bindir = args.bin_dir
        self.trustd = os.path.join(self.bindir, "trustd")
        self.ztctl = os.path.join(self.bindir, "ztctl")
        self.ztca = os.path.join(self.bindir, "ztca")
        self.authz = os.path.join(self.bindir, "bench", "authz")
        self.dir = tempfile.mkdtemp(prefix="ztgate-bench-")
        self.logs = os.path.join(self.dir, "logs")
        os.makedirs(self.logs)
        self.procs = {}
        self.workers = []
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        self.ports = {k: free_port() for k, _ in VARIANTS}
        self.tls_ports = {k: free_port() for k, _ in VARIANTS}
        self.results = {k: [] for k, _ in VARIANTS}
        self.notes = []
        self.trustd_has_stats = None
        self.trustd_has_reset = None
        self.trustd_runs = []       # per zt-nocache run: dict
        self.cache_runs = []        # per zt-cache run: decisions
        self.authz_runs = []        # per authreq run: dict
        self.deadline = time.monotonic() + args.max_time

    # --- set-up -----------------------------------------------------------

    def check_tools(self):
        for p in (self.trustd, self.ztctl, self.ztca, self.authz,
                  self.a.module):
            if not os.path.exists(p):
                raise SetupError("not built: %s (run make first)" % p)
        for tool in (self.a.wrk, self.a.nginx):
            if shutil.which(tool) is None:
                raise SetupError("%s not found (apt-get install wrk nginx)"
                                 % tool)

    def make_pki(self):
        self.ca = os.path.join(self.dir, "ca")
        run(self.ztca, "init", "-d", self.ca, "--cn", "ztgate bench CA")
        self.server_key = os.path.join(self.dir, "server.key")
        self.server_crt = os.path.join(self.dir, "server.crt")
        run(self.ztca, "server", "-d", self.ca, "--key", self.server_key,
            "--cert", self.server_crt, "--dns", "localhost",
            "--ip", "127.0.0.1")
        self.device_crt = os.path.join(self.dir, "device.crt")
        self.device_key = os.path.join(self.dir, "device.key")
        run(self.ztca, "device", "-d", self.ca, "--cert", self.device_crt,
            "--key", self.device_key, "--cn", "bench-laptop")
        self.store = os.path.join(self.dir, "store")
        run(self.ztctl, "-s", self.store, "--actor", "bench", "device",
            "enroll", "--cert", self.device_crt, "--owner", "alice",
            "--name", "bench-laptop")

    def write_files(self):
        self.www = os.path.join(self.dir, "www")
        os.makedirs(os.path.join(self.www, "device"))
        for name in ("index.html", "device/index.html"):
            with open(os.path.join(self.www, name), "wb") as f:
                f.write(BODY)
        os.chmod(self.dir, 0o755)   # nginx's workers read the file

        self.policy_dir = os.path.join(self.dir, "policy")
        os.makedirs(self.policy_dir)
        with open(os.path.join(self.policy_dir, "bench.policy"), "w") as f:
            f.write(POLICY)

        self.trustd_sock = os.path.join(self.dir, "trustd.sock")
        self.admin_sock = os.path.join(self.dir, "admin.sock")
        self.authz_sock = os.path.join(self.dir, "authz.sock")
        self.trustd_conf = os.path.join(self.dir, "trustd.conf")
        with open(self.trustd_conf, "w") as f:
            f.write("# written by bench/gateway-bench.py\n"
                    "listen %s\n"
                    "listen_mode 0660\n"
                    "peer_user %s\n"
                    "admin_listen %s\n"
                    "store %s\n"
                    "store_map_size 64M\n"
                    "log_level warn\n"
                    "log_target stderr\n"
                    "allow_ttl 2s\n"
                    "policy %s\n" % (self.trustd_sock, self.user,
                                     self.admin_sock, self.store,
                                     self.policy_dir))

        self.nginx_conf = os.path.join(self.dir, "nginx.conf")
        temp = "".join("    %s_temp_path %s/%s;\n" % (t, self.dir, t)
                       for t in ("client_body", "proxy", "fastcgi", "uwsgi",
                                 "scgi"))
        tls = """
        ssl_certificate %s;
        ssl_certificate_key %s;
        ssl_client_certificate %s/ca.crt;
        ssl_verify_client optional;""" % (self.server_crt, self.server_key,
                                          self.ca)

        def server(key, body):
            return """
    server {
        listen 127.0.0.1:%d;
        listen 127.0.0.1:%d ssl;
        server_name localhost;%s
%s
    }
""" % (self.ports[key], self.tls_ports[key], tls, body)

        servers = server("plain", """
        location / { }""")
        servers += server("zt-cache", """
        location / {
            zt on;
            zt_cache on;
        }""")
        servers += server("zt-nocache", """
        location / {
            zt on;
            zt_cache off;
        }""")
        servers += server("authreq", """
        location / {
            auth_request /_authz;
        }

        location = /_authz {
            internal;
            proxy_pass http://authz;
            proxy_http_version 1.1;
            proxy_pass_request_body off;
            proxy_pass_request_headers off;
            proxy_set_header Connection "";
            proxy_set_header Content-Length "";
            proxy_set_header Host $host;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-ZT-Scheme $scheme;
            proxy_set_header X-ZT-Client-Addr $remote_addr;
            proxy_set_header X-ZT-Device-Fp $zt_device_fp;
            proxy_set_header User-Agent $http_user_agent;
            proxy_set_header Cookie $http_cookie;
        }""")

        with open(self.nginx_conf, "w") as f:
            f.write("""# written by bench/gateway-bench.py
load_module %(module)s;
%(user)s
daemon off;
worker_processes auto;
worker_rlimit_nofile 8192;
error_log %(logs)s/error.log warn;
pid %(dir)s/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    default_type text/html;
    root %(www)s;
%(temp)s
    zt_trustd unix:%(trustd)s;
    zt_cache_zone 10m max_ttl=2s;

    upstream authz {
        server unix:%(authz)s;
        keepalive 64;
        keepalive_requests 1000000;
    }
%(servers)s}
""" % dict(module=self.a.module, logs=self.logs, dir=self.dir,
           user="user %s;" % self.user if os.geteuid() == 0 else "",
           www=self.www, temp=temp, trustd=self.trustd_sock,
           authz=self.authz_sock, servers=servers))

    def spawn(self, name, argv):
        logf = open(os.path.join(self.logs, name + ".log"), "a")
        self.procs[name] = subprocess.Popen(argv, stdout=logf,
                                            stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        logf.close()

    def alive(self, name):
        p = self.procs.get(name)
        if p is None or p.poll() is not None:
            raise SetupError("%s exited:\n%s" % (name, self.read_log(name)))
        return True

    def read_log(self, name):
        try:
            with open(os.path.join(self.logs, name + ".log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def start(self):
        self.spawn("trustd", [self.trustd, "-f", "-c", self.trustd_conf])
        wait_for(lambda: self.alive("trustd")
                 and unix_open(self.trustd_sock), 10, "trustd")
        self.spawn("authz", [self.authz, "-c", self.trustd_conf,
                             "-l", self.authz_sock])
        wait_for(lambda: self.alive("authz") and unix_open(self.authz_sock),
                 10, "authz")
        run(self.a.nginx, "-t", "-q", "-p", self.dir, "-c", self.nginx_conf,
            "-e", os.path.join(self.logs, "error.log"))
        self.spawn("nginx", [self.a.nginx, "-p", self.dir, "-c",
                             self.nginx_conf, "-e",
                             os.path.join(self.logs, "error.log")])
        wait_for(lambda: self.alive("nginx")
                 and all(port_open(p) for p in self.ports.values()), 10,
                 "nginx")

    def stop(self):
        # nginx first (it holds connections to both deciders)
        for name in ("nginx", "authz", "trustd"):
            p = self.procs.get(name)
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGQUIT if name == "nginx"
                          else signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def cleanup(self):
        if self.a.keep:
            log("kept %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- probes -----------------------------------------------------------

    def admin(self, cmd):
        """One admin command; the reply text, or None if unreachable."""
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(self.admin_sock)
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

    def trustd_stats(self, reset=False):
        """trustd's counters (reset after reading when reset and trustd
        knows stats-reset), or None without a stats command."""
        if self.trustd_has_stats is False:
            return None
        reply = None
        if reset and self.trustd_has_reset is not False:
            reply = self.admin("stats-reset")
            st = parse_kv(reply or "")
            if st is not None and "decisions" in st:
                self.trustd_has_reset = True
                return st
            self.trustd_has_reset = False
        reply = self.admin("stats")
        st = parse_kv(reply or "")
        if st is None or "decisions" not in st:
            if self.trustd_has_stats is None:
                self.notes.append(
                    "trustd has no admin 'stats' command (reply %r): "
                    "decisions were not counted; a zt variant's requests "
                    "were checked through trustd's CPU time and the "
                    "module failing closed" % (reply or "").strip())
            self.trustd_has_stats = False
            return None
        self.trustd_has_stats = True
        return st

    def cpu_seconds(self, name=None, pid=None):
        """CPU time (user + system) of one of our processes, or None."""
        if pid is None:
            p = self.procs.get(name)
            if p is None:
                return None
            pid = p.pid
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / \
                os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return None

    def find_workers(self):
        """nginx's worker processes (children of the master we started)."""
        master = self.procs["nginx"].pid
        self.workers = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                self.workers.append(int(d))

    def cpu_sample(self):
        """(machine busy seconds, seconds used by this benchmark's own
        processes): their difference over a run is other processes' load.
        Interrupt time is left out of both (loopback traffic is ours)."""
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        busy = (v[0] + v[1] + v[2]) / os.sysconf("SC_CLK_TCK")
        ours = 0.0
        for name in ("trustd", "authz", "nginx"):
            ours += self.cpu_seconds(name) or 0.0
        for pid in self.workers:
            ours += self.cpu_seconds(pid=pid) or 0.0
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
            ru = resource.getrusage(who)    # wrk, once it is reaped
            ours += ru.ru_utime + ru.ru_stime
        return busy, ours

    def authz_stats(self):
        """Ask authz for its stats line (SIGUSR1) and parse it."""
        before = self.read_log("authz").count("authz stats:")
        self.procs["authz"].send_signal(signal.SIGUSR1)
        wait_for(lambda: self.read_log("authz").count("authz stats:")
                 > before, 5, "authz stats")
        line = self.read_log("authz").split("authz stats:")[-1]
        return parse_kv("ok " + line.splitlines()[0])

    def get(self, key, path, cert=False, tls=False, timeout=5):
        if tls:
            ctx = ssl.create_default_context(
                cafile=os.path.join(self.ca, "ca.crt"))
            if cert:
                ctx.load_cert_chain(self.device_crt, self.device_key)
            conn = http.client.HTTPSConnection("localhost",
                                               self.tls_ports[key],
                                               context=ctx, timeout=timeout)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.ports[key],
                                              timeout=timeout)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def functional_checks(self):
        """Every variant serves the file; the deciders agree on a device
        rule (enrolled certificate allowed, none denied) over TLS."""
        for key, label in VARIANTS:
            st, body = self.get(key, "/index.html")
            if st != 200 or body != BODY:
                raise SetupError("%s: GET /index.html answered %d" % (label,
                                                                       st))
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
        fp = hashlib.sha256(ssl.PEM_cert_to_DER_cert(
            open(self.device_crt).read())).hexdigest()
        log("functional checks passed: every variant serves the file; "
            "trustd and authz allow /device/ to the enrolled device "
            "(%s...) over TLS and deny it without a certificate" % fp[:16])

    # --- measurement ------------------------------------------------------

    def wrk(self, key, duration):
        url = "http://127.0.0.1:%d/index.html" % self.ports[key]
        argv = [self.a.wrk, "-t%d" % self.a.threads,
                "-c%d" % self.a.connections, "-d%ds" % duration,
                "--timeout", "5s", "--latency", url]
        p = subprocess.run(argv, capture_output=True, text=True,
                           timeout=duration + 30)
        if p.returncode != 0:
            raise Invalid("wrk failed (%d): %s%s" % (p.returncode, p.stdout,
                                                      p.stderr))
        return parse_wrk(p.stdout)

    def measure(self, key, label, rnd):
        self.alive("trustd")
        self.alive("authz")
        self.alive("nginx")

        before = None
        cpu0 = self.cpu_seconds("trustd")
        if key in ("zt-cache", "zt-nocache"):
            before = self.trustd_stats(reset=True)
        elif key == "authreq":
            before = self.authz_stats()

        t0 = time.monotonic()
        busy0, ours0 = self.cpu_sample()
        r = self.wrk(key, self.a.duration)
        busy1, ours1 = self.cpu_sample()
        wall = time.monotonic() - t0
        r["other_load"] = max(0.0, (busy1 - busy0) - (ours1 - ours0)) / \
            (wall * os.cpu_count())

        cpu1 = self.cpu_seconds("trustd")
        r["trustd_cpu"] = (cpu1 - cpu0) if None not in (cpu0, cpu1) else None

        if r["non2xx"]:
            raise Invalid("%s, round %d: %d non-2xx/3xx answers out of %d "
                          "(see %s/error.log)" % (label, rnd, r["non2xx"],
                                                  r["requests"], self.logs))
        if r["requests"] == 0:
            raise Invalid("%s, round %d: wrk completed no request" % (label,
                                                                      rnd))

        check = ""
        if key in ("zt-cache", "zt-nocache"):
            after = self.trustd_stats()
            if after is not None and before is not None:
                if self.trustd_has_reset:
                    n = after["decisions"]
                else:
                    n = after["decisions"] - before["decisions"]
                r["decisions"] = n
                r["decision_p50"] = after.get("p50_us")
                r["decision_p99"] = after.get("p99_us")
                frac = n / r["requests"]
                if key == "zt-nocache":
                    # in-flight requests at wrk's end are decided but not
                    # counted by wrk, hence a little over 1
                    if not 0.95 <= frac <= 1.05 + 1000.0 / r["requests"]:
                        raise Invalid(
                            "%s, round %d: trustd made %d decisions for %d "
                            "requests: it was not consulted for each" % (
                                label, rnd, n, r["requests"]))
                    self.trustd_runs.append(dict(
                        decisions=n, wall=wall, rps=r["rps"],
                        p50=r["decision_p50"], p99=r["decision_p99"],
                        cpu=r["trustd_cpu"],
                        windowed=bool(self.trustd_has_reset)))
                else:
                    # the first request per cache lifetime (2 s) goes to
                    # trustd; anything near the request count means no cache
                    if frac > 0.05:
                        raise Invalid(
                            "%s, round %d: trustd made %d decisions for %d "
                            "requests: the cache is not serving" % (
                                label, rnd, n, r["requests"]))
                    self.cache_runs.append(n)
                check = "trustd decisions %d" % n
            else:
                check = "trustd cpu %.2fs" % (r["trustd_cpu"] or 0.0)
                if key == "zt-nocache" and r["trustd_cpu"] is not None \
                        and r["trustd_cpu"] < 0.02:
                    raise Invalid("%s, round %d: trustd used no CPU time "
                                  "for %d requests" % (label, rnd,
                                                       r["requests"]))
                if key == "zt-nocache":
                    self.trustd_runs.append(dict(
                        decisions=None, wall=wall, rps=r["rps"], p50=None,
                        p99=None, cpu=r["trustd_cpu"], windowed=False))
        elif key == "authreq":
            after = self.authz_stats()
            n = after["requests"] - before["requests"]
            allow = after["allow"] - before["allow"]
            if allow < r["requests"] or n > 1.05 * r["requests"] + 1000:
                raise Invalid("%s, round %d: authz allowed %d and answered "
                              "%d for %d requests" % (label, rnd, allow, n,
                                                      r["requests"]))
            r["decisions"] = n
            self.authz_runs.append(dict(decisions=n, wall=wall,
                                        p50=after.get("decide_p50_us"),
                                        p99=after.get("decide_p99_us")))
            check = "authz decisions %d" % n

        self.results[key].append(r)
        log("  round %d  %-26s %9.0f req/s  p50 %-9s p99 %-9s %s%s%s" % (
            rnd, label, r["rps"], ms(r["p50"]), ms(r["p99"]), check,
            ("  socket errors %d" % r["socket_errors"])
            if r["socket_errors"] else "",
            ("  OTHER LOAD %.0f%%" % (100 * r["other_load"]))
            if r["other_load"] >= OTHER_LOAD_NOTE else ""))

    def time_left(self, need):
        return time.monotonic() + need < self.deadline

    def benchmark(self):
        if self.a.warmup > 0:
            log("warm-up: %d s per variant" % self.a.warmup)
            for key, label in VARIANTS:
                r = self.wrk(key, self.a.warmup)
                if r["non2xx"]:
                    raise Invalid("%s: %d non-2xx answers during warm-up"
                                  % (label, r["non2xx"]))
        per_round = len(VARIANTS) * (self.a.duration + 1)
        for rnd in range(1, self.a.rounds + 1):
            if not self.time_left(per_round + 15):
                self.notes.append("stopped after %d of %d rounds: the time "
                                  "limit (--max-time %d s) was near"
                                  % (rnd - 1, self.a.rounds,
                                     self.a.max_time))
                break
            for key, label in VARIANTS:
                self.measure(key, label, rnd)

    def device_latency(self):
        """trustd's inside latency for decisions that read a device record:
        sequential requests with the enrolled device's certificate (TLS) to
        the cache-off variant.  None without stats-reset."""
        n = self.a.device_requests
        if n <= 0 or not self.trustd_has_reset:
            return None
        self.trustd_stats(reset=True)
        ctx = ssl.create_default_context(
            cafile=os.path.join(self.ca, "ca.crt"))
        ctx.load_cert_chain(self.device_crt, self.device_key)
        conn = http.client.HTTPSConnection("localhost",
                                           self.tls_ports["zt-nocache"],
                                           context=ctx, timeout=5)
        t0 = time.monotonic()
        try:
            for _ in range(n):
                conn.request("GET", "/device/index.html")
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    raise Invalid("device request answered %d" % r.status)
        finally:
            conn.close()
        wall = time.monotonic() - t0
        st = self.trustd_stats()
        if st is None or st["decisions"] < n:
            raise Invalid("trustd counted %s decisions for %d device "
                          "requests" % (st and st["decisions"], n))
        return dict(n=n, wall=wall, p50=st.get("p50_us"),
                    p99=st.get("p99_us"))

    def dead_trustd(self):
        """Kill trustd (its socket file stays: connection refused) and time
        sequential requests to the cache-off variant."""
        p = self.procs["trustd"]
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
        lat, statuses = [], {}
        for _ in range(self.a.dead_requests):
            conn = http.client.HTTPConnection("127.0.0.1",
                                              self.ports["zt-nocache"],
                                              timeout=5)
            try:
                conn.connect()
                t0 = time.perf_counter()
                conn.request("GET", "/index.html")
                r = conn.getresponse()
                r.read()
                lat.append(time.perf_counter() - t0)
                statuses[r.status] = statuses.get(r.status, 0) + 1
            finally:
                conn.close()
        return lat, statuses

    # --- report -----------------------------------------------------------

    def report(self, dead, device):
        med = {}
        log("")
        log("=" * 78)
        log("ztgate gateway benchmark: plain HTTP on loopback (wrk cannot "
            "present client")
        log("certificates), GET /index.html (100 bytes, the same file in "
            "every variant),")
        log("allowed by policy rule \"bench\" (source in 127.0.0.0/8) in "
            "variants 2-4;")
        log("wrk -t%d -c%d -d%ds --latency, %d round(s) alternating 1 2 3 4, "
            "medians;" % (self.a.threads, self.a.connections,
                          self.a.duration, len(self.results["plain"])))
        log("one nginx (worker_processes auto = %d), trustd, authz and wrk "
            "share %d CPUs." % (os.cpu_count(), os.cpu_count()))
        log("=" * 78)
        log("%-28s %10s %10s %10s   %s" % ("variant", "req/s", "p50",
                                           "p99", "req/s per round"))
        for key, label in VARIANTS:
            rs = self.results[key]
            if not rs:
                continue
            med[key] = statistics.median(x["rps"] for x in rs)
            log("%-28s %10.0f %10s %10s   %s" % (
                label, med[key],
                ms(statistics.median(x["p50"] for x in rs)),
                ms(statistics.median(x["p99"] for x in rs)),
                " ".join("%.0f" % x["rps"] for x in rs)))
        log("")

        def ratio(name, a, b, target):
            if a not in med or b not in med or med[b] == 0:
                return
            v = med[a] / med[b]
            log("%-44s %6.3f   target >= %.2f   %s" % (
                name, v, target, verdict(v >= target)))

        ratio("ratio 2/1 (cache on / baseline)", "zt-cache", "plain",
              TARGETS["ratio_cache"])
        ratio("ratio 3/1 (cache off / baseline)", "zt-nocache", "plain",
              TARGETS["ratio_nocache"])
        ratio("ratio 3/4 (cache off / auth_request)", "zt-nocache",
              "authreq", TARGETS["ratio_vs_authreq"])
        log("")

        runs = self.trustd_runs
        cpu = [r["cpu"] / r["wall"] for r in runs if r["cpu"]]
        cpu_text = ""
        if cpu:
            per_cpu = [(r["decisions"] if r["decisions"] is not None
                        else r["rps"] * r["wall"]) / r["cpu"]
                       for r in runs if r["cpu"]]
            cpu_text = "; trustd used %.0f%% of one core, %.0f decisions " \
                "per CPU-second" % (100 * statistics.median(cpu),
                                    statistics.median(per_cpu))
        if runs and runs[0]["decisions"] is not None:
            log("trustd during variant 3: %.0f decisions/s (counted by "
                "trustd)%s" % (statistics.median(
                    r["decisions"] / r["wall"] for r in runs), cpu_text))
        elif runs:
            log("trustd during variant 3: %.0f decisions/s (wrk's rate: "
                "the module fails closed, so each 200 was decided by "
                "trustd)%s" % (statistics.median(r["rps"] for r in runs),
                               cpu_text))

        def latency(what, p50, p99):
            log("  %-42s p50 %6.2f us %-4s  p99 %6.2f us %s" % (
                what, p50, verdict(p50 <= TARGETS["trustd_p50_us"]), p99,
                verdict(p99 <= TARGETS["trustd_p99_us"])))

        p50s = [r["p50"] for r in runs if r["p50"] is not None]
        p99s = [r["p99"] for r in runs if r["p99"] is not None]
        if p50s and p99s:
            log("decision latency inside trustd, around decide() (targets "
                "p50 <= %.0f us, p99 <= %.0f us):" % (
                    TARGETS["trustd_p50_us"], TARGETS["trustd_p99_us"]))
            latency("variant 3 (source rule, no device record)%s"
                    % ("" if runs[0]["windowed"] else " [cumulative]"),
                    statistics.median(p50s), statistics.median(p99s))
            if device is not None and device["p50"] is not None:
                latency("device certificate looked up (%d TLS req.)"
                        % device["n"], device["p50"], device["p99"])
        elif runs:
            log("decision latency inside trustd: n/a (trustd has no admin "
                "'stats' command)")
        if self.cache_runs:
            log("trustd decisions during variant 2 (cache on): %s per run"
                % " ".join(str(int(n)) for n in self.cache_runs))
        if self.authz_runs:
            p50s = [r["p50"] for r in self.authz_runs if r["p50"]]
            p99s = [r["p99"] for r in self.authz_runs if r["p99"]]
            if p50s:
                log("authz (variant 4), decide() inside the authorizer: "
                    "p50 %.2f us, p99 %.2f us" % (statistics.median(p50s),
                                                  statistics.median(p99s)))
        log("")

        if dead is not None:
            lat, statuses = dead
            if lat:
                worst = max(lat)
                ok = worst <= TARGETS["dead_ms"] / 1000.0 and \
                    set(statuses) == {503}
                log("%-44s %6.2f ms  target <= %.0f ms   %s" % (
                    "dead trustd (refused), max of %d requests" % len(lat),
                    worst * 1000, TARGETS["dead_ms"], verdict(ok)))
                log("  median %.2f ms; answers: %s" % (
                    statistics.median(lat) * 1000,
                    ", ".join("%d x %d" % (n, s)
                              for s, n in sorted(statuses.items()))))
        busy = [(x["other_load"], label) for key, label in VARIANTS
                for x in self.results[key]
                if x["other_load"] >= OTHER_LOAD_NOTE]
        if busy:
            log("note: other processes used the CPUs during %d run(s) (up "
                "to %.0f%% of the machine, marked OTHER LOAD above): those "
                "numbers are disturbed; rerun on a quiet machine"
                % (len(busy), 100 * max(busy)[0]))
        for n in self.notes:
            log("note: " + n)
        bad = [l for l in self.read_log("error").splitlines()
               if "[alert]" in l or "[emerg]" in l or "[crit]" in l]
        if bad:
            log("note: nginx's error log has %d alert/crit/emerg lines, "
                "first: %s" % (len(bad), bad[0].strip()))
        log("=" * 78)


def on_sigterm(signum, frame):
    raise KeyboardInterrupt()


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
    ap.add_argument("--dead-requests", type=int, default=50,
                    help="requests timed against a dead trustd (default 50)")
    ap.add_argument("--device-requests", type=int, default=2000,
                    help="sequential TLS requests with the device "
                         "certificate for trustd's device-decision latency "
                         "(default 2000; 0: skip)")
    ap.add_argument("--max-time", type=int, default=270,
                    help="stop starting rounds after this many seconds "
                         "(default 270)")
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "build"),
                    help="where trustd, ztctl, ztca and bench/authz are")
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

    # Ctrl-C and SIGTERM both end up in the finally below
    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    b = Bench(a)
    rc = 0
    try:
        b.check_tools()
        log("setting up in %s" % b.dir)
        b.make_pki()
        b.write_files()
        b.start()
        b.find_workers()
        b.functional_checks()
        b.trustd_stats()
        b.benchmark()
        device = b.device_latency()
        dead = b.dead_trustd() if a.dead_requests > 0 else None
        b.report(dead, device)
    except KeyboardInterrupt:
        log("interrupted")
        rc = 130
    except Invalid as e:
        log("")
        log("!" * 78)
        log("INVALID MEASUREMENT: %s" % e)
        log("!" * 78)
        rc = 1
    except (SetupError, subprocess.TimeoutExpired, OSError) as e:
        log("SETUP FAILED: %s" % e)
        for name in ("trustd", "authz", "nginx"):
            text = b.read_log(name)
            if text.strip():
                log("--- %s log (last lines) ---\n%s" % (
                    name, "\n".join(text.splitlines()[-15:])))
        rc = 1
    finally:
        b.stop()
        b.cleanup()
    return rc


if __name__ == "__main__":
    sys.exit(main())
