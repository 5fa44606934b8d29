"""The staff enrollment console (issue 9): ztconsole behind the gateway,
through real nginx, trustd, the portal, LMDB and the device CA.

The end-to-end test drives a real headless browser (Debian's chromium
through python3-selenium and chromium-driver) that presents the staff
member's device certificate from an NSS database under a temporary HOME:
the staff member signs in at the portal with a password and a real TOTP
code, creates a user, enrolls the user's authenticator from the secret on
the page, issues a PKCS#12 device certificate, revokes the user's
session, and the audit journal holds every action with the staff member
as its actor.  The other tests speak HTTP directly: who may use the
console, CSRF, languages, CSR enrollment, and the console's own checks
behind a policy that lets everybody through.
"""

import base64
import hashlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import BUILD, ZTCTL, Gateway, run, wait_for
from test_identity import (PASSWORD, Browser, FormParser, avoid_step_edge,
                           enroll_user, totp)

CONSOLE = os.path.join(BUILD, "ztconsole")
CHROMIUM = os.environ.get("ZT_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("ZT_CHROMEDRIVER", "/usr/bin/chromedriver")

STAFF = "sam"

# The console's location as docs/console.md and config/policy describe it:
# staff, on their own active enrolled device, second factor < 15 minutes.
POLICY = """
app "gateway" {
    host "localhost"

    rule "console: your own enrolled device" {
        path prefix "/console"
        when user.authenticated
             and not (device.status == active and device.bound)
        deny 403 "The staff console needs your own enrolled device"
    }

    rule "console: staff only" {
        path prefix "/console"
        when user.authenticated and not ("staff" in user.groups)
        deny 403 "The staff console is for staff"
    }

    rule "console: fresh second factor" {
        path prefix "/console"
        when user.authenticated and "staff" in user.groups
             and auth.mfa_age >= 15m
        step-up
    }

    rule "console" {
        path prefix "/console"
        when "staff" in user.groups and device.status == active
             and device.bound and auth.mfa_age < 15m
        allow
        cache 0s
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

# A policy that lets every signed-in user reach the console: what is
# left is the console's own checks (defence in depth).
OPEN_POLICY = """
app "gateway" {
    host "localhost"

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


class ConsoleGateway(Gateway):
    """A gateway with ztconsole on a Unix socket behind /console/."""

    def __init__(self, tmp, console_extra="", **kw):
        kw.setdefault("policy", POLICY)
        kw.setdefault("identity", True)
        super().__init__(tmp, **kw)
        self.console_sock = os.path.join(self.dir, "console.sock")
        self.console_conf = os.path.join(self.dir, "console.conf")
        self.console_extra = console_extra

    def portal_location(self):
        return super().portal_location() + """
        location /console/ {
            zt on;
            zt_timeout 500ms;
            client_max_body_size 64k;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_pass http://unix:%s:$zt_uri$is_args$args;
        }""" % self.console_sock

    @property
    def origin(self):
        return "https://localhost:%d" % self.port

    def start(self):
        super().start()
        self.start_console()

    def start_console(self):
        with open(self.console_conf, "w") as f:
            f.write("# written by the test harness\n"
                    "trustd_config %s\n"
                    "listen %s\n"
                    "peer_user %s\n"
                    "origin %s\n"
                    "base_path /console\n"
                    "ca_dir %s\n"
                    "log_level debug\n"
                    "log_target stderr\n"
                    "%s\n" % (self.trustd_conf, self.console_sock, self.user,
                              self.origin, self.ca, self.console_extra))
        run(CONSOLE, "-n", "-c", self.console_conf)
        log = open(os.path.join(self.logs, "console.log"), "a")
        self.procs["console"] = subprocess.Popen(
            [CONSOLE, "-c", self.console_conf],
            stdout=log, stderr=subprocess.STDOUT)
        wait_for(self.console_listening, what="ztconsole")

    def console_listening(self):
        if self.procs["console"].poll() is not None:
            raise AssertionError("ztconsole exited:\n" + self.console_log())
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(self.console_sock)
            return "serving /console" in self.console_log()
        except OSError:
            return False

    def console_log(self):
        try:
            return open(os.path.join(self.logs, "console.log")).read()
        except FileNotFoundError:
            return ""

    def bad_log_lines(self):
        bad = super().bad_log_lines()
        bad += ["console.log: " + l for l in self.console_log().splitlines()
                if any(m in l for m in ("AddressSanitizer", "runtime error:",
                                        "LeakSanitizer"))]
        return bad

    def actions_of(self, actor):
        """The audit journal's actions with this actor, oldest first."""
        out = run(ZTCTL, "-s", self.store, "audit", "search", "--kind",
                  "action", "--actor", actor, "--json").stdout
        return [json.loads(l) for l in out.splitlines() if l.strip()]


@pytest.fixture
def make_console(tmp_path):
    gws = []

    def factory(**kw):
        gw = ConsoleGateway(tmp_path / ("gw%d" % len(gws)), **kw)
        gws.append(gw)
        gw.start()
        return gw

    yield factory

    bad = []
    for gw in gws:
        gw.stop()
        bad += gw.bad_log_lines()
    assert not bad, "bad log lines:\n" + "\n".join(bad)


def add_staff(gw, name=STAFF, groups=("staff",)):
    """A user with password, active TOTP and an enrolled laptop."""
    secret = enroll_user(gw, name, groups=groups)
    cert = gw.issue_device(name + "-laptop")
    gw.enroll(cert[0], owner=name, name=name + "'s laptop")
    return secret, cert


def sign_in(gw, name, secret, cert=None, step=0):
    """A signed-in python browser.  step: TOTP steps ahead of now (a user
    signs in at most once per step: a code is refused a second time)."""
    b = Browser(gw, cert)
    status, _, body = b.login(name, PASSWORD,
                              totp(secret, time.time() + 30 * step))
    assert status == 303, body[:300]
    return b


def page_form(body, action):
    """The fields of the form posting to action on an HTML page."""
    html = body.decode()
    i = html.index('action="%s"' % action)
    start = html.rindex("<form", 0, i)
    end = html.index("</form>", i)
    p = FormParser()
    p.feed(html[start:end])
    return p.fields


def post(b, path, fields, origin=None, extra=None):
    headers = dict(extra or {})
    if origin:
        headers["Origin"] = origin
    return b.request("POST", path, body=fields, headers=headers)


def raw_console(gw, request):
    """Send raw bytes to ztconsole's socket; return (status, body)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(gw.console_sock)
        s.sendall(request.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                head, _, rest = data.partition(b"\r\n\r\n")
                m = re.search(rb"content-length: *(\d+)", head, re.I)
                if m and len(rest) >= int(m.group(1)):
                    break
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


# --- who may use the console ------------------------------------------------

def test_staff_on_their_own_device_reach_the_console(make_console):
    gw = make_console()
    secret, cert = add_staff(gw)
    b = sign_in(gw, STAFF, secret, cert)

    status, headers, body = b.request("GET", "/console/")

    assert status == 200, body[:500]
    page = body.decode()
    assert '<strong id="staff">%s</strong>' % STAFF in page
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-store"
    assert "<script" not in page


def test_a_signed_in_user_who_is_not_staff_gets_403(make_console):
    gw = make_console()
    secret = enroll_user(gw, "carol", groups=("finance",))
    laptop = gw.issue_device("carol-laptop")
    gw.enroll(laptop[0], owner="carol")
    b = sign_in(gw, "carol", secret, laptop)

    status, _, _ = b.request("GET", "/console/")

    assert status == 403


def test_staff_without_their_device_get_403(make_console):
    gw = make_console()
    secret, cert = add_staff(gw)
    b = sign_in(gw, STAFF, secret)          # no certificate

    assert b.request("GET", "/console/")[0] == 403


def test_a_forged_identity_header_without_an_assertion_is_refused(
        make_console):
    gw = make_console()
    add_staff(gw)

    status, body = raw_console(
        gw, "GET /console/ HTTP/1.1\r\nHost: localhost\r\n"
            "X-ZT-User: %s\r\nX-ZT-Groups: staff\r\n"
            "Connection: close\r\n\r\n" % STAFF)

    assert status == 403
    assert STAFF.encode() not in body
    assert "no X-ZT-Assertion" in gw.console_log()


def test_forged_and_foreign_assertions_are_refused(make_console):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    gw = make_console()
    secret, cert = add_staff(gw)
    b = sign_in(gw, STAFF, secret, cert)
    # a real assertion, as an application behind the gateway sees it
    status, _, body = b.request("GET", "/app")
    assert status == 200
    seen = {k.lower(): v for k, v in json.loads(body)["headers"]}
    real = seen["x-zt-assertion"]
    h, p, s = real.split(".")
    pad = lambda x: x + "=" * (-len(x) % 4)
    b64 = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
    header = json.loads(base64.urlsafe_b64decode(pad(h)))
    claims = json.loads(base64.urlsafe_b64decode(pad(p)))

    other = ec.generate_private_key(ec.SECP256R1())

    def sign(hdr, cl, key=other):
        hh = b64(json.dumps(hdr).encode())
        pp = b64(json.dumps(cl).encode())
        der = key.sign((hh + "." + pp).encode(), ec.ECDSA(hashes.SHA256()))
        r, s_ = utils.decode_dss_signature(der)
        return "%s.%s.%s" % (hh, pp, b64(r.to_bytes(32, "big")
                                         + s_.to_bytes(32, "big")))

    forged = {
        "another key": sign(header, claims),
        "alg none": "%s.%s." % (b64(json.dumps(dict(header, alg="none"))
                                    .encode()), p),
        "HS256": "%s.%s.%s" % (b64(json.dumps(dict(header, alg="HS256"))
                                   .encode()), p, s[:43]),
        "tampered groups": "%s.%s.%s" % (
            h, b64(json.dumps(dict(claims, groups=["staff", "x"]))
                   .encode()), s),
    }

    def ask(token, host="localhost"):
        return raw_console(
            gw, "GET /console/ HTTP/1.1\r\nHost: %s\r\nX-ZT-Assertion: %s"
                "\r\nConnection: close\r\n\r\n" % (host, token))[0]

    for why, token in forged.items():
        assert ask(token) == 403, why
    # the real one is for this host only (aud), and twice is refused
    assert ask(real, host="other.example") == 403
    assert raw_console(
        gw, "GET /console/ HTTP/1.1\r\nHost: localhost\r\n"
            "X-ZT-Assertion: %s\r\nX-ZT-Assertion: %s\r\n"
            "Connection: close\r\n\r\n" % (real, real))[0] == 403
    assert "assertion refused" in gw.console_log()


def test_the_console_checks_the_group_itself(make_console):
    gw = make_console(policy=OPEN_POLICY)
    secret = enroll_user(gw, "carol", groups=("finance",))
    laptop = gw.issue_device("carol-laptop")
    gw.enroll(laptop[0], owner="carol")
    b = sign_in(gw, "carol", secret, laptop)

    status, _, body = b.request("GET", "/console/")

    assert status == 403
    assert "carol is not in the group staff" in gw.console_log()


def test_the_console_checks_device_and_second_factor_age_itself(
        make_console):
    gw = make_console(policy=OPEN_POLICY, console_extra="mfa_max_age 3s")
    secret, cert = add_staff(gw)
    other = gw.issue_device("someone-elses")
    gw.enroll(other[0], owner="bob")

    b = sign_in(gw, STAFF, secret, cert)
    assert b.request("GET", "/console/")[0] == 200

    # not their own device: the gateway lets it through, the console not
    c = sign_in(gw, STAFF, secret, other, step=1)
    assert c.request("GET", "/console/")[0] == 403

    time.sleep(4.5)
    assert b.request("GET", "/console/")[0] == 403
    assert "older than mfa_max_age" in gw.console_log()


def test_a_revoked_staff_device_is_refused_at_once(make_console):
    gw = make_console(policy=OPEN_POLICY)
    secret, cert = add_staff(gw)
    b = sign_in(gw, STAFF, secret, cert)
    assert b.request("GET", "/console/")[0] == 200

    gw.ztctl("device", "quarantine", gw.fingerprint(cert[0]))

    assert b.request("GET", "/console/")[0] == 403


# --- forms --------------------------------------------------------------------

def test_every_post_needs_the_origin_and_the_session_bound_token(
        make_console):
    gw = make_console()
    secret, cert = add_staff(gw)
    b = sign_in(gw, STAFF, secret, cert)
    status, _, body = b.request("GET", "/console/users/new")
    assert status == 200
    fields = page_form(body, "/console/users/new")
    fields.update(name="dora", display="Dora", groups="hr",
                  pwmode="generate")

    no_token = dict(fields, csrf="")
    assert post(b, "/console/users/new", no_token, gw.origin)[0] == 403
    assert post(b, "/console/users/new", fields)[0] == 403
    assert post(b, "/console/users/new", fields,
                "https://evil.example")[0] == 403
    assert post(b, "/console/users/new", fields, gw.origin,
                {"Sec-Fetch-Site": "cross-site"})[0] == 403
    # a token of another session of the same staff member
    other = sign_in(gw, STAFF, secret, cert, step=1)
    _, _, body2 = other.request("GET", "/console/users/new")
    assert page_form(body2, "/console/users/new")["csrf"] != fields["csrf"]
    assert post(other, "/console/users/new", fields, gw.origin)[0] == 403
    assert gw.ztctl("user", "show", "dora", check=False).returncode == 3

    status, _, body = post(b, "/console/users/new", fields, gw.origin)

    assert status == 200, body[:400]
    assert re.search(r'id="one-time-password"[^>]*>([a-z0-9-]{23})<',
                     body.decode())
    assert gw.ztctl("user", "show", "dora").returncode == 0


def test_a_typed_password_and_bad_values_are_checked(make_console):
    gw = make_console()
    secret, cert = add_staff(gw)
    b = sign_in(gw, STAFF, secret, cert)
    _, _, body = b.request("GET", "/console/users/new")
    fields = page_form(body, "/console/users/new")
    fields.update(name="erin", display="Erin", groups="hr, staff",
                  pwmode="set", password="short", password2="short")

    status, _, body = post(b, "/console/users/new", fields, gw.origin)
    assert status == 400
    assert "at least 12 characters" in body.decode()

    fields.update(password=PASSWORD, password2=PASSWORD + "x")
    status, _, body = post(b, "/console/users/new", fields, gw.origin)
    assert status == 400 and "differ" in body.decode()

    fields.update(name="Erin<script>", password2=PASSWORD)
    status, _, body = post(b, "/console/users/new", fields, gw.origin)
    assert status == 400 and "<script>" not in body.decode()

    fields.update(name="erin")
    status, _, body = post(b, "/console/users/new", fields, gw.origin)
    assert status == 200
    assert "one-time-password" not in body.decode()
    out = gw.ztctl("user", "show", "erin").stdout
    assert re.search(r"groups\s+hr,staff", out)
    assert re.search(r"password\s+yes", out)


# --- languages and accessibility ----------------------------------------------

def test_the_console_speaks_traditional_chinese_and_switches(make_console):
    gw = make_console()
    secret, cert = add_staff(gw)
    b = sign_in(gw, STAFF, secret, cert)

    status, _, body = b.request("GET", "/console/",
                                headers={"Accept-Language": "zh-TW"})
    page = body.decode()
    assert status == 200
    assert '<html lang="zh-TW">' in page
    assert "使用者與裝置" in page

    status, headers, _ = b.request(
        "GET", "/console/lang?to=en&back=/console/users/new",
        headers={"Accept-Language": "zh-TW"})
    assert status == 303
    assert headers["Location"].endswith("/console/users/new")
    assert "__Host-zt_console_lang" in b.cookies

    _, _, body = b.request("GET", "/console/users/new",
                           headers={"Accept-Language": "zh-TW"})
    page = body.decode()
    assert '<html lang="en">' in page
    # every input has a label, the page has one h1 and a skip link
    ids = re.findall(r'<input id="([^"]+)"', page)
    assert ids and all('for="%s"' % i in page for i in ids)
    assert page.count("<h1>") == 1
    assert 'href="#main"' in page

    # never back to anywhere but the console
    status, headers, _ = b.request(
        "GET", "/console/lang?to=zh-TW&back=https://evil.example/")
    assert status == 303
    assert headers["Location"].endswith("/console/")


# --- devices from a certificate request -----------------------------------

def multipart(fields, files):
    boundary = "zt" + hashlib.sha256(os.urandom(8)).hexdigest()[:24]
    out = io.BytesIO()
    for k, v in fields.items():
        out.write(("--%s\r\nContent-Disposition: form-data; name=\"%s\""
                   "\r\n\r\n%s\r\n" % (boundary, k, v)).encode())
    for k, (name, data) in files.items():
        out.write(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; "
                   "filename=\"%s\"\r\nContent-Type: application/pkcs10"
                   "\r\n\r\n" % (boundary, k, name)).encode())
        out.write(data + b"\r\n")
    out.write(("--%s--\r\n" % boundary).encode())
    return out.getvalue(), "multipart/form-data; boundary=" + boundary


def test_a_device_is_enrolled_from_its_certificate_request(make_console):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    gw = make_console()
    secret, cert = add_staff(gw)
    gw.ztctl("user", "create", "fay", "--group", "hr")
    b = sign_in(gw, STAFF, secret, cert)
    _, _, body = b.request("GET", "/console/user?name=fay")
    fields = page_form(body, "/console/user/devices/new")

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                       "ignored")]))
           .sign(key, hashes.SHA256()))
    pem = csr.public_bytes(serialization.Encoding.PEM)
    fields.pop("csr")          # the file input: sent as a file below
    fields.update(devname="Fay's desktop", platform="debian", kind="csr")
    data, ctype = multipart(fields, {"csr": ("fay.csr", pem)})

    conn = gw.connect(cert)
    conn.request("POST", "/console/user/devices/new", body=data, headers={
        "Content-Type": ctype, "Origin": gw.origin,
        "Cookie": "; ".join("%s=%s" % kv for kv in b.cookies.items())})
    r = conn.getresponse()
    page = r.read().decode()
    conn.close()

    assert r.status == 200, page[:500]
    m = re.search(r'href="data:application/x-pem-file;base64,([^"]+)"', page)
    crt = x509.load_pem_x509_certificate(base64.b64decode(m.group(1)))
    assert crt.public_key().public_numbers() == \
        key.public_key().public_numbers()
    fp = hashlib.sha256(crt.public_bytes(serialization.Encoding.DER)) \
        .hexdigest()
    assert fp in page
    out = gw.ztctl("device", "show", fp).stdout
    assert "fay" in out and "Fay's desktop" in out
    enroll = [a for a in gw.actions_of(STAFF)
              if a["action"] == "device.enroll"]
    assert len(enroll) == 1 and fp[:16] in json.dumps(enroll[0])

    # a request whose signature does not verify is refused, nothing issued
    bad = pem.replace(pem[200:204], b"AAAA")
    data, ctype = multipart(dict(fields, devname="bad"),
                            {"csr": ("bad.csr", bad)})
    conn = gw.connect(cert)
    conn.request("POST", "/console/user/devices/new", body=data, headers={
        "Content-Type": ctype, "Origin": gw.origin,
        "Cookie": "; ".join("%s=%s" % kv for kv in b.cookies.items())})
    r = conn.getresponse()
    assert r.status == 400
    conn.close()
    assert len([a for a in gw.actions_of(STAFF)
                if a["action"] == "device.enroll"]) == 1


def test_quarantine_and_revoke_a_device_and_reset_an_authenticator(
        make_console):
    gw = make_console()
    secret, cert = add_staff(gw)
    gsecret = enroll_user(gw, "gus", groups=("hr",))
    laptop = gw.issue_device("gus-laptop")
    fp = gw.enroll(laptop[0], owner="gus")
    gus = sign_in(gw, "gus", gsecret, laptop)
    assert gus.request("GET", "/app")[0] == 200
    b = sign_in(gw, STAFF, secret, cert)

    _, _, body = b.request("GET", "/console/device?fp=" + fp)
    fields = page_form(body, "/console/device/status")
    status, headers, _ = post(b, "/console/device/status",
                              dict(fields, status="quarantined",
                                   reason="missed patch window"), gw.origin)
    assert status == 303
    _, _, body = b.request("GET", "/console/device?fp=" + fp)
    assert 'data-status="quarantined"' in body.decode()
    fields = page_form(body, "/console/device/status")
    post(b, "/console/device/status", dict(fields, status="revoked",
                                           reason="stolen"), gw.origin)
    assert gus.request("GET", "/app")[0] in (302, 403)

    _, _, body = b.request("GET", "/console/user?name=gus")
    fields = page_form(body, "/console/user/totp/reset")
    status, headers, _ = post(b, "/console/user/totp/reset", fields,
                              gw.origin)
    assert status == 303
    assert "msg=totp-reset" in headers["Location"]
    assert re.search(r"totp\s+none", gw.ztctl("user", "show", "gus").stdout)

    actions = [(a["action"], a["subject"]) for a in gw.actions_of(STAFF)]
    assert ("device.quarantine", "urn:ztgate:device:") in [
        (x, y[:18]) for x, y in actions]
    assert "device.revoke" in [x for x, _ in actions]
    assert ("user.totp.reset", "gus") in actions


# --- end to end in a real browser ------------------------------------------

def need_browser():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    missing += [t for t in ("certutil", "pk12util") if not shutil.which(t)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("python3-selenium")
    if missing:
        msg = ("needs chromium, chromium-driver, python3-selenium and "
               "libnss3-tools (scripts/install-deps.sh installs them); "
               "missing: " + ", ".join(missing))
        # in CI a missing browser is a broken set-up, not a reason to skip
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(msg)
        pytest.skip(msg)


def chromium(gw, cert, home):
    """A headless chromium whose NSS database holds the device's key and
    certificate (and trusts the gateway's CA), set to present them to this
    gateway without asking."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    nssdb = os.path.join(home, ".pki", "nssdb")
    os.makedirs(nssdb)
    p12 = os.path.join(home, "device.p12")
    run("openssl", "pkcs12", "-export", "-in", cert[0], "-inkey", cert[1],
        "-out", p12, "-passout", "pass:browser", "-name", "staff laptop")
    run("certutil", "-N", "-d", "sql:" + nssdb, "--empty-password")
    run("pk12util", "-i", p12, "-d", "sql:" + nssdb, "-W", "browser")
    run("certutil", "-A", "-d", "sql:" + nssdb, "-n", "ztgate test CA",
        "-t", "C,,", "-i", os.path.join(gw.ca, "ca.crt"))

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage",
              "--no-first-run", "--lang=en-US",
              "--user-data-dir=" + os.path.join(home, "profile")):
        opts.add_argument(a)
    if os.geteuid() == 0:
        opts.add_argument("--no-sandbox")
    # the content setting AutoSelectCertificateForUrls sets, as a pref:
    # no system-wide policy file needed
    opts.add_experimental_option("prefs", {
        "profile.content_settings.exceptions.auto_select_certificate": {
            "https://localhost:%d,*" % gw.port: {"setting": {"filters": [
                {"ISSUER": {"CN": "ztgate test CA"}}]}}},
        "intl.accept_languages": "en-US,en"})
    service = Service(CHROMEDRIVER, env=dict(os.environ, HOME=home),
                      log_output=os.path.join(gw.logs, "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_page_load_timeout(30)
    return driver


def test_staff_enroll_a_user_end_to_end_in_a_real_browser(make_console,
                                                          tmp_path):
    need_browser()
    from cryptography.hazmat.primitives.serialization import pkcs12
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    gw = make_console()
    secret, cert = add_staff(gw)
    home = str(tmp_path / "home")
    d = chromium(gw, cert, home)
    base = "https://localhost:%d" % gw.port
    try:
        def find(css):
            """The element, waiting for the page that has it: a click
            returns before the next page has loaded."""
            return WebDriverWait(d, 20).until(
                EC.presence_of_element_located((By.CSS_SELECTOR, css)))

        def left(old):
            """True once the page of element old has been replaced (during
            a navigation chromedriver reports that in more than one
            way)."""
            def check(_):
                try:
                    old.is_enabled()
                    return False
                except WebDriverException:
                    return True
            return check

        def loaded(_):
            return d.execute_script("return document.readyState") \
                == "complete"

        def submit(css="button[type=submit]", scope=None):
            """Click what leads to another page, and wait for that page."""
            old = d.find_element(By.TAG_NAME, "html")
            (scope or d).find_element(By.CSS_SELECTOR, css).click()
            WebDriverWait(d, 20).until(left(old))
            WebDriverWait(d, 20).until(loaded)

        # 1. the console sends the staff member to sign in, and back
        d.get(base + "/console/")
        assert "/zt/login" in d.current_url
        find("#zt-user").send_keys(STAFF)
        find("#zt-password").send_keys(PASSWORD)
        find("#zt-code").send_keys(totp(secret, time.time()))
        submit()
        wait_for(lambda: d.current_url.startswith(base + "/console/"),
                 what="the console after sign-in")
        assert find("#staff").text == STAFF

        # 2. create a user with a generated one-time password
        submit("header nav a[href='/console/users/new']")
        find("#name").send_keys("carol")
        find("#display").send_keys("Carol Chen")
        find("#groups").send_keys("finance")
        submit()
        password = find("#one-time-password").text
        assert re.fullmatch(r"[a-z0-9]{5}(-[a-z0-9]{5}){3}", password)
        submit("#to-user")
        assert find("h1").text == "User carol"

        # 3. the authenticator: read the secret off the page, prove a code
        submit("#totp-start")
        assert find("#totp-qr svg") is not None
        b32 = find("#totp-secret").text.replace(" ", "")
        csecret = base64.b32decode(b32 + "=" * (-len(b32) % 8))
        avoid_step_edge()
        find("#code").send_keys(totp(csecret, time.time() - 30))
        submit()
        wait_for(lambda: "msg=totp" in d.current_url, what="confirmation")
        assert find("#totp-state").get_attribute("data-state") == "active"

        # 4. a device: PKCS#12 with a one-time passphrase
        find("#devname").send_keys("Carol's laptop")
        find("input[name=kind][value=p12]").click()
        submit(scope=d.find_element(
            By.CSS_SELECTOR, "form[action='/console/user/devices/new']"))
        passphrase = find("#p12-passphrase").text
        href = find("#p12-download").get_attribute("href")
        blob = base64.b64decode(href.split(",", 1)[1])
        key, crt, _ = pkcs12.load_key_and_certificates(blob,
                                                       passphrase.encode())
        assert key is not None and crt is not None
        device_fp = find("#device-fp").text

        # 5. carol signs in; staff revoke her session from the console
        carol = Browser(gw)
        status, _, _ = carol.login("carol", password,
                                   totp(csecret, time.time()))
        assert status == 303
        assert carol.request("GET", "/app")[0] == 200
        # and a user who is not staff gets 403 from the console
        assert carol.request("GET", "/console/")[0] == 403

        d.get(base + "/console/user?name=carol")
        revoke = find("#sessions ~ table button[data-sid]")
        sid = revoke.get_attribute("data-sid")
        submit("#sessions ~ table button[data-sid]")
        wait_for(lambda: "msg=session" in d.current_url, what="revocation")
        assert carol.request("GET", "/app")[0] == 302

        # 6. the language switch, by keyboard-reachable link
        submit("a[hreflang=zh-TW]")
        assert find("html").get_attribute("lang") == "zh-TW"
        assert find("h1").text == "使用者 carol"
    finally:
        d.quit()

    # 7. the journal names the staff member as the actor of every step
    actions = gw.actions_of(STAFF)
    done = [(a["action"], a["subject"]) for a in actions]
    for action, subject in [("user.create", "carol"),
                            ("user.password", "carol"),
                            ("user.totp.enroll", "carol"),
                            ("user.totp.confirm", "carol"),
                            ("session.revoke", "carol")]:
        assert (action, subject) in done, (action, done)
    enrolled = [a for a in actions if a["action"] == "device.enroll"]
    assert len(enrolled) == 1 and device_fp[:16] in json.dumps(enrolled[0])
    assert any(a["action"] == "session.revoke" and sid in json.dumps(a)
               for a in actions)
    # and ztctl agrees on the state the console left
    out = gw.ztctl("user", "show", "carol").stdout
    assert re.search(r"totp\s+active", out)
    assert "finance" in out
