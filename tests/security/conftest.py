"""The attacker's suite: shared harness.

It reuses the integration harness (tests/integration/conftest.py: real
nginx with the module, real trustd, real LMDB, the echo upstream) and adds
what the security cases share: a policy with an /admin area only group
"admins" may reach, a gateway shared by one test module (so 100+ cases
stay within the run-time budget), signed-in users, and a raw HTTPS client
for requests http.client refuses to send.

The integration conftest is loaded under its own module name and every
public name is re-exported, so test modules here (and the integration
modules, which do `from conftest import ...`) find what they expect
whichever conftest pytest imported last.
"""

import gc
import importlib.util
import os
import socket
import ssl
import sys
import time
import types
import urllib.parse

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION = os.path.join(HERE, "..", "integration")
if INTEGRATION not in sys.path:
    sys.path.insert(0, INTEGRATION)



def _integration_conftest():
    """The integration conftest module pytest already loaded (when both
    directories run), else a fresh copy.  Sharing the one module matters:
    integration tests monkeypatch its Gateway class, and after this file
    is imported their `from conftest import Gateway` finds our re-export."""
    path = os.path.realpath(os.path.join(INTEGRATION, "conftest.py"))
    if "zt_harness" in sys.modules:
        return sys.modules["zt_harness"]
    for obj in gc.get_objects():
        if (isinstance(obj, types.ModuleType)
                and os.path.realpath(getattr(obj, "__file__", "") or "")
                == path):
            sys.modules["zt_harness"] = obj
            return obj
    spec = importlib.util.spec_from_file_location("zt_harness", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["zt_harness"] = mod
    spec.loader.exec_module(mod)
    return mod


zt_harness = _integration_conftest()

from zt_harness import *            # noqa: F401,F403  (fixtures and names)
from zt_harness import Gateway, make_gateway, gateway, device  # noqa: F401
from zt_harness import pytest_sessionstart  # noqa: F401

import test_identity                # noqa: E402  (Browser, totp, forge, ...)
from test_identity import (Browser, PASSWORD, enroll_user,  # noqa: F401
                           totp, forge, b64u, rel, token_parts)

# An /admin area for group "admins" only, an office area for one network,
# a device area for enrolled devices, and a permissive rest: any signed-in
# user may reach anything else.  Path tricks must never turn a non-admin's
# request into one that reaches /admin.
POLICY = """
network office = 10.0.0.0/8

app "gateway" {
    host "localhost"

    rule "admins" {
        path prefix "/admin"
        when user.authenticated and "admins" in user.groups
        allow
    }

    rule "admin is for admins only" {
        path prefix "/admin"
        when not ("admins" in user.groups)
        deny "admins only"
    }

    rule "office network" {
        path prefix "/office"
        when source in office
        allow
    }

    rule "office is closed elsewhere" {
        path prefix "/office"
        when not (source in office)
        deny "office network only"
    }

    rule "enrolled devices" {
        path prefix "/device"
        when device.known
        allow
    }

    rule "devices only" {
        path prefix "/device"
        when not device.known
        deny "enrolled devices only"
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


class SharedGateway:
    """One identity gateway for a whole test module, with users enrolled
    on demand.  Each user signs in once (a TOTP code is good only once)."""

    def __init__(self, gw):
        self.gw = gw
        self.secrets = {}
        self.browsers = {}

    def user(self, name, groups=()):
        if name not in self.secrets:
            self.secrets[name] = enroll_user(self.gw, name, groups=groups)
        return self.secrets[name]

    def sign_in(self, name, groups=(), cert=None, next_path="/"):
        """A Browser signed in as name (cached per user and device)."""
        key = (name, cert)
        if key in self.browsers:
            return self.browsers[key]
        secret = self.user(name, groups)
        b = Browser(self.gw, cert)
        status, _, _ = login(b, name, secret, next_path)
        assert status == 303, status
        self.browsers[key] = b
        return b


def login(b, name, secret, next_path="/", code=None):
    """Sign in with a fresh code: the current step's, else a neighbour's
    (each code is accepted once per user)."""
    fields = b.form("/zt/login?next=" + urllib.parse.quote(next_path))
    fields.update(user=name, password=PASSWORD,
                  code=code or totp(secret, time.time()))
    return b.request("POST", "/zt/login", body=fields)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """A started identity gateway with POLICY, shared by one module; its
    logs are checked for alerts and sanitizer reports at teardown."""
    gw = Gateway(tmp_path_factory.mktemp("shared") / "gw", policy=POLICY,
                 identity=True, trustd_extra="source_limit 100000")
    try:
        gw.start()
        yield SharedGateway(gw)
    finally:
        gw.stop()
    bad = bad_log_lines(gw)
    assert not bad, "bad log lines:\n" + "\n".join(bad)


def bad_log_lines(gw):
    """Gateway.bad_log_lines(), reading logs that may hold raw bytes from
    request lines (nginx logs them unescaped in the error log)."""
    bad = []
    for name in ("error.log", "trustd.log"):
        try:
            with open(os.path.join(gw.logs, name), "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            continue
        bad += ["%s: %s" % (name, l) for l in text.splitlines()
                if any(m in l for m in BAD_LOG_MARKERS)]
    return bad


# --- a raw HTTPS client ------------------------------------------------------

class RawResponse:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        import json
        return json.loads(self.body)


def raw_request(gw, head, cert=None, timeout=10):
    """Send head (bytes: request line and headers, without the final
    CRLF CRLF) as is on a new TLS connection; returns a RawResponse or
    None when nginx closed without answering."""
    ctx = gw.ssl_context(cert)
    with socket.create_connection(("127.0.0.1", gw.port),
                                  timeout=timeout) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            t.sendall(head + b"\r\n\r\n")
            data = b""
            while True:
                try:
                    chunk = t.recv(65536)
                except (ssl.SSLError, ConnectionResetError):
                    break
                if not chunk:
                    break
                data += chunk
    if not data:
        return None
    top, _, body = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = [tuple(x.strip() for x in l.split(":", 1)) for l in lines[1:]
               if ":" in l]
    if any(k.lower() == "transfer-encoding" and "chunked" in v.lower()
           for k, v in headers):
        out = b""
        while body:
            size, _, rest = body.partition(b"\r\n")
            n = int(size.split(b";")[0], 16)
            if n == 0:
                break
            out += rest[:n]
            body = rest[n + 2:]
        body = out
    return RawResponse(status, headers, body)


def get_raw(gw, target, cookies=None, cert=None, host=b"localhost",
            extra=()):
    """GET target (bytes, sent exactly) with the given cookies."""
    if isinstance(target, str):
        target = target.encode("latin-1")
    lines = [b"GET " + target + b" HTTP/1.1"]
    if host is not None:
        lines.append(b"Host: " + host)
    if cookies:
        lines.append(b"Cookie: " + "; ".join(
            "%s=%s" % kv for kv in cookies.items()).encode())
    lines += list(extra)
    lines.append(b"Connection: close")
    return raw_request(gw, b"\r\n".join(lines), cert=cert)
