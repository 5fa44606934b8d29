"""Integration harness: real nginx with the ztgate module, real trustd, a
real LMDB store, certificates from ztgate's own CA, and the echo upstream.

Each test gets a fresh gateway in its own temporary directory.  Every
process a test starts is stopped at teardown, and a test fails if nginx's
error log has an [alert]/[emerg] line or any log has a sanitizer report.
"""

import hashlib
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

import ztwire

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("ZT_BIN_DIR", os.path.join(ROOT, "build"))
NGINX = os.environ.get("ZT_NGINX", "/usr/sbin/nginx")
PYTHON = "/usr/bin/python3"

TRUSTD = os.path.join(BUILD, "trustd")
ZTCTL = os.path.join(BUILD, "ztctl")
ZTCA = os.path.join(BUILD, "ztca")
MODULE = os.environ.get("ZT_MODULE",
                        os.path.join(ROOT, "build", "ngx_http_zt_module.so"))
ECHO = os.path.join(ROOT, "scripts", "echo-upstream.py")

BAD_LOG_MARKERS = ("[alert]", "[emerg]", "AddressSanitizer",
                   "runtime error:", "LeakSanitizer")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def run(*argv, check=True, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s%s" % (
            " ".join(argv), p.returncode, p.stdout, p.stderr))
    return p


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def upstream_headers(self):
        """Headers the echo upstream received, names lower-cased."""
        return [(k.lower(), v) for k, v in self.json()["headers"]]

    def upstream_header(self, name):
        vals = [v for k, v in self.upstream_headers() if k == name.lower()]
        return vals


class FakeTrustd:
    """A stand-in trustd for failure tests: handler(rid, fields) returns
    the bytes to send back (or None for no answer)."""

    def __init__(self, path, handler):
        self.handler = handler
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(path)
        self.sock.listen(16)
        self.conns = []
        self.requests = 0
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self.conn, args=(c,), daemon=True).start()

    def conn(self, c):
        buf = b""
        while True:
            try:
                data = c.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            frames, buf = ztwire.parse_frames(buf)
            for _, rid, fields in frames:
                self.requests += 1
                out = self.handler(rid, fields)
                if out:
                    try:
                        c.sendall(out)
                    except OSError:
                        return

    def close(self):
        self.stop = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


class Gateway:
    """One ztgate deployment in a temporary directory."""

    def __init__(self, tmp, timeout_ms=500, extra_loc="", trustd_extra="",
                 fake_trustd=None, workers=2, policy=None, identity=False,
                 cache=""):
        self.dir = str(tmp)
        self.ca = os.path.join(self.dir, "ca")
        self.store = os.path.join(self.dir, "store")
        self.sock = os.path.join(self.dir, "trustd.sock")
        self.logs = os.path.join(self.dir, "logs")
        os.makedirs(self.logs)
        self.port = free_port()
        self.echo_port = free_port()
        self.timeout_ms = timeout_ms
        self.extra_loc = extra_loc
        self.trustd_extra = trustd_extra
        self.procs = {}
        self.fake_trustd = fake_trustd
        self.fake = None
        self.workers = workers
        self.policy = policy
        self.identity = identity
        self.cache = cache
        self.keys = os.path.join(self.dir, "keys")
        self.portal_sock = os.path.join(self.dir, "portal.sock")
        self.policy_dir = os.path.join(self.dir, "policy")
        self.admin_sock = os.path.join(self.dir, "admin.sock")
        self.user = pwd.getpwuid(os.geteuid()).pw_name

    # --- set-up -----------------------------------------------------------

    def make_pki(self):
        run(ZTCA, "init", "-d", self.ca, "--cn", "ztgate test CA")
        self.server_key = os.path.join(self.dir, "server.key")
        self.server_crt = os.path.join(self.dir, "server.crt")
        run(ZTCA, "server", "-d", self.ca, "--key", self.server_key,
            "--cert", self.server_crt, "--dns", "localhost",
            "--ip", "127.0.0.1")

    def issue_device(self, name, ca=None):
        """Issue a device certificate; returns (cert, key) paths."""
        crt = os.path.join(self.dir, name + ".crt")
        key = os.path.join(self.dir, name + ".key")
        run(ZTCA, "device", "-d", ca or self.ca, "--cert", crt, "--key", key,
            "--cn", name)
        return crt, key

    def ztctl(self, *args, check=True):
        return run(ZTCTL, "-s", self.store, "--actor", "pytest", *args,
                   check=check)

    def enroll(self, crt, owner="alice", name="laptop"):
        self.ztctl("device", "enroll", "--cert", crt, "--owner", owner,
                   "--name", name)
        return self.fingerprint(crt)

    @staticmethod
    def fingerprint(crt):
        """SHA-256 of the certificate DER, computed independently of ztca."""
        der = ssl.PEM_cert_to_DER_cert(open(crt).read())
        return hashlib.sha256(der).hexdigest()

    def write_policy(self, text, name="main.policy"):
        os.makedirs(self.policy_dir, exist_ok=True)
        with open(os.path.join(self.policy_dir, name), "w") as f:
            f.write(text)

    def write_trustd_conf(self):
        self.trustd_conf = os.path.join(self.dir, "trustd.conf")
        extra = self.trustd_extra
        if self.policy is not None:
            self.write_policy(self.policy)
            extra += "\npolicy %s\nportal_url %s" % (
                self.policy_dir,
                "/zt" if self.identity else "https://localhost/zt")
        if self.identity:
            extra += ("\nidentity_keys %s\nportal_listen %s\n"
                      "portal_host localhost\nlockout_time 3s\n"
                      % (self.keys, self.portal_sock))
        with open(self.trustd_conf, "w") as f:
            f.write(
                "# written by the test harness\n"
                "listen %s\n"
                "listen_mode 0660\n"
                "peer_user %s\n"
                "admin_listen %s\n"
                "store %s\n"
                "store_map_size 64M\n"
                "log_level debug\n"
                "log_target stderr\n"
                "%s\n" % (self.sock, self.user, self.admin_sock, self.store,
                          extra))

    def reload_trustd(self):
        """SIGHUP trustd and wait until it has acted on it."""
        before = self.trustd_log().count("received SIGHUP")
        self.procs["trustd"].send_signal(signal.SIGHUP)
        wait_for(lambda: self.trustd_log().count("received SIGHUP") > before
                 and ("reloaded" in self.trustd_log().split(
                     "received SIGHUP")[-1]
                      or "reload failed" in self.trustd_log().split(
                          "received SIGHUP")[-1]),
                 what="trustd to reload")

    def write_nginx_conf(self):
        self.nginx_conf = os.path.join(self.dir, "nginx.conf")
        user = "user %s;" % self.user if os.geteuid() == 0 else ""
        temp = "".join("%s_temp_path %s/%s;\n" % (t, self.dir, t)
                       for t in ("client_body", "proxy", "fastcgi",
                                 "uwsgi", "scgi"))
        with open(self.nginx_conf, "w") as f:
            f.write("""
load_module %(module)s;
%(user)s
worker_processes %(workers)d;
error_log %(logs)s/error.log info;
pid %(dir)s/nginx.pid;
events { worker_connections 1024; }
http {
    log_format zt '$remote_addr "$request" $status $zt_decision '
                  '$zt_cache_status';
    access_log %(logs)s/access.log zt;
    %(cache)s
    %(temp)s
    zt_trustd unix:%(sock)s;
    zt_identity_header Remote-User;
    upstream app { server 127.0.0.1:%(echo)d; keepalive 16; }
    server {
        listen 127.0.0.1:%(port)d ssl;
        server_name localhost;
        ssl_certificate %(crt)s;
        ssl_certificate_key %(key)s;
        ssl_client_certificate %(ca)s/ca.crt;
        ssl_verify_client optional;
        location / {
            zt on;
            zt_timeout %(timeout)dms;
            %(extra)s
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://app$zt_uri$is_args$args;
        }
        %(portal)s
        location /public/ {
            zt off;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://app;
        }
    }
}
""" % dict(module=MODULE, user=user, logs=self.logs, dir=self.dir,
                temp=temp, sock=self.sock, echo=self.echo_port,
                port=self.port, crt=self.server_crt, key=self.server_key,
                ca=self.ca, timeout=self.timeout_ms, extra=self.extra_loc,
                workers=self.workers, portal=self.portal_location(),
                cache=self.cache))

    def portal_location(self):
        if not self.identity:
            return ""
        return """
        location /zt/ {
            zt off;
            client_max_body_size 8k;
            zt_pass_session_cookie on;
            proxy_set_header Host $host;
            proxy_set_header X-ZT-Client-Addr $remote_addr;
            proxy_set_header X-ZT-Device-Fp $zt_device_fp;
            proxy_set_header X-ZT-Scheme $scheme;
            proxy_pass http://unix:%s;
        }""" % self.portal_sock

    def start(self):
        self.make_pki()
        self.write_trustd_conf()
        self.write_nginx_conf()
        self.start_echo()
        if self.fake_trustd:
            self.fake = FakeTrustd(self.sock, self.fake_trustd)
        else:
            self.start_trustd()
        self.start_nginx()

    def start_echo(self):
        log = open(os.path.join(self.logs, "echo.log"), "w")
        self.procs["echo"] = subprocess.Popen(
            [PYTHON, ECHO, "--port", str(self.echo_port)],
            stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: port_open(self.echo_port), what="echo upstream")

    def start_trustd(self):
        log = open(os.path.join(self.logs, "trustd.log"), "a")
        self.procs["trustd"] = subprocess.Popen(
            [TRUSTD, "-f", "-c", self.trustd_conf],
            stdout=log, stderr=subprocess.STDOUT)
        wait_for(self.trustd_listening, what="trustd socket")
        if self.identity:
            wait_for(lambda: "sign-in portal on" in self.trustd_log(),
                     what="the sign-in portal")

    def trustd_listening(self):
        if self.procs["trustd"].poll() is not None:
            raise AssertionError("trustd exited:\n" + self.trustd_log())
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(self.sock)
            return True
        except OSError:
            return False

    def start_nginx(self):
        run(NGINX, "-t", "-q", "-p", self.dir, "-c", self.nginx_conf,
            "-e", os.path.join(self.logs, "error.log"))
        run(NGINX, "-p", self.dir, "-c", self.nginx_conf,
            "-e", os.path.join(self.logs, "error.log"))
        wait_for(lambda: os.path.exists(os.path.join(self.dir, "nginx.pid"))
                 and port_open(self.port), what="nginx")

    # --- processes --------------------------------------------------------

    def kill_trustd(self, sig=signal.SIGKILL):
        p = self.procs["trustd"]
        p.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            p.wait(timeout=10)

    def stop(self):
        pidfile = os.path.join(self.dir, "nginx.pid")
        if os.path.exists(pidfile):
            pid = int(open(pidfile).read())
            try:
                os.kill(pid, signal.SIGTERM)
                wait_for(lambda: not os.path.exists(pidfile), timeout=10,
                         what="nginx to stop")
            except ProcessLookupError:
                pass
        if self.fake:
            self.fake.close()
        for name, p in self.procs.items():
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGCONT)
                except ProcessLookupError:
                    pass
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    # --- logs -------------------------------------------------------------

    def error_log(self):
        try:
            return open(os.path.join(self.logs, "error.log")).read()
        except FileNotFoundError:
            return ""

    def access_log(self):
        try:
            return open(os.path.join(self.logs, "access.log")).read()
        except FileNotFoundError:
            return ""

    def trustd_log(self):
        try:
            return open(os.path.join(self.logs, "trustd.log")).read()
        except FileNotFoundError:
            return ""

    def trustd_messages(self):
        """The messages of trustd's log lines with their format's quoting
        undone, whatever log_format says (kv, json or text)."""
        out = []
        for line in self.trustd_log().splitlines():
            m = re.match(r'ts=\S+ level=\S+ pid=\d+ msg="((?:[^"\\]|\\.)*)"',
                         line)
            if m:
                out.append(re.sub(r"\\(.)", r"\1", m.group(1)))
            elif line.startswith("{"):
                out.append(json.loads(line)["msg"])
            else:
                out.append(line.split(": ", 2)[-1])
        return out

    def bad_log_lines(self):
        bad = []
        for name in ("error.log", "trustd.log"):
            try:
                text = open(os.path.join(self.logs, name)).read()
            except FileNotFoundError:
                continue
            bad += ["%s: %s" % (name, l) for l in text.splitlines()
                    if any(m in l for m in BAD_LOG_MARKERS)]
        return bad

    # --- clients ----------------------------------------------------------

    def ssl_context(self, cert=None):
        ctx = ssl.create_default_context(cafile=os.path.join(self.ca,
                                                             "ca.crt"))
        if cert:
            ctx.load_cert_chain(*cert)
        return ctx

    def connect(self, cert=None, timeout=10):
        return http.client.HTTPSConnection(
            "localhost", self.port, context=self.ssl_context(cert),
            timeout=timeout)

    def get(self, path="/", cert=None, headers=None, method="GET",
            conn=None, timeout=10):
        own = conn is None
        if own:
            conn = self.connect(cert, timeout)
        try:
            conn.request(method, path, headers=headers or {})
            r = conn.getresponse()
            return Response(r.status, dict(r.getheaders()), r.read())
        finally:
            if own:
                conn.close()


@pytest.fixture
def make_gateway(tmp_path):
    """Factory: make_gateway(**options) -> a started Gateway."""
    gws = []

    def factory(**kw):
        gw = Gateway(tmp_path / ("gw%d" % len(gws)), **kw)
        gws.append(gw)
        gw.start()
        return gw

    yield factory

    bad = []
    for gw in gws:
        gw.stop()
        bad += gw.bad_log_lines()
    assert not bad, "bad log lines:\n" + "\n".join(bad)


@pytest.fixture
def gateway(make_gateway):
    return make_gateway()


@pytest.fixture
def device(gateway):
    """An enrolled device of alice's: (cert, key) paths."""
    cert = gateway.issue_device("alice-laptop")
    gateway.enroll(cert[0])
    return cert


def pytest_sessionstart(session):
    missing = [p for p in (TRUSTD, ZTCTL, ZTCA, MODULE)
               if not os.path.exists(p)]
    if missing:
        raise pytest.UsageError("not built: %s (run make first)"
                                % ", ".join(missing))
    if not shutil.which(NGINX) and not os.path.exists(NGINX):
        raise pytest.UsageError("nginx not found at " + NGINX)
