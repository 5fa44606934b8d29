"""Identity (stage one) through real nginx, trustd, the portal and LMDB:
staff enroll a user, the user signs in with password + TOTP, the session
token is device-bound, step-up, sign-out, lockout, and an attacker's
attempts at tokens and redirects (issue 4)."""

import base64
import hashlib
import hmac
import html.parser
import json
import os
import re
import struct
import time
import urllib.parse

import pytest

from conftest import ZTCTL, run

PASSWORD = "correct horse battery staple"

POLICY = """
app "gateway" {
    host "localhost"

    rule "admin needs a fresh second factor" {
        path prefix "/admin"
        when user.authenticated and auth.mfa_age > 3s
        step-up
    }

    rule "admin" {
        path prefix "/admin"
        when user.authenticated and "staff" in user.groups
        allow
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


# --- TOTP, computed independently of ztgate (RFC 6238) ----------------------

def totp(secret, t, digits=6, period=30):
    counter = int(t) // period
    mac = hmac.new(secret, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF)
    return str(code % 10 ** digits).zfill(digits)


def rel(location):
    """The path and query of a Location (nginx makes redirects absolute)."""
    u = urllib.parse.urlsplit(location)
    return u.path + ("?" + u.query if u.query else "")


def avoid_step_edge():
    """Tests use codes of neighbouring steps: do not start on an edge."""
    if time.time() % 30 > 22:
        time.sleep(30 - time.time() % 30 + 0.2)


# --- a small browser ---------------------------------------------------------

class FormParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.fields = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and "name" in a:
            self.fields[a["name"]] = a.get("value", "")


class Browser:
    def __init__(self, gw, cert=None):
        self.gw = gw
        self.cert = cert
        self.cookies = {}

    def request(self, method, path, body=None, headers=None):
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = "; ".join("%s=%s" % kv for kv in
                                    self.cookies.items())
        if body is not None:
            body = urllib.parse.urlencode(body)
            h["Content-Type"] = "application/x-www-form-urlencoded"
        conn = self.gw.connect(self.cert)
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            for k, v in r.getheaders():
                if k.lower() == "set-cookie":
                    name, _, rest = v.partition("=")
                    value = rest.split(";")[0]
                    if "Max-Age=0" in v:
                        self.cookies.pop(name, None)
                    else:
                        self.cookies[name] = value
            return r.status, dict(r.getheaders()), data
        finally:
            conn.close()

    def form(self, path):
        status, headers, body = self.request("GET", path)
        assert status == 200, (status, body[:300])
        p = FormParser()
        p.feed(body.decode())
        return p.fields

    def login(self, user, password, code, next_path="/"):
        fields = self.form("/zt/login?next=" + urllib.parse.quote(next_path))
        fields.update(user=user, password=password, code=code)
        return self.request("POST", "/zt/login", body=fields)


# --- fixtures ----------------------------------------------------------------

@pytest.fixture
def igw(make_gateway):
    gw = make_gateway(policy=POLICY, identity=True)
    gw.secret = enroll_user(gw, "alice", groups=("staff",))
    return gw


def enroll_user(gw, name, groups=()):
    """Staff create a user, set a password and enroll TOTP, proving a code."""
    args = ["user", "create", name, "--display", name.title()]
    for g in groups:
        args += ["--group", g]
    gw.ztctl(*args)
    pwfile = os.path.join(gw.dir, name + ".pw")
    with open(pwfile, "w") as f:
        f.write(PASSWORD + "\n")
    gw.ztctl("user", "passwd", name, "--password-file", pwfile)

    # through trustd's configuration, as staff would: it names the store,
    # the key directory and the token algorithm
    p = run(ZTCTL, "-c", gw.trustd_conf, "--actor", "pytest", "user",
            "totp-enroll", name, check=False, stdin=open(os.devnull))
    uri = re.search(r"otpauth://\S+", p.stdout + p.stderr).group(0)
    q = urllib.parse.parse_qs(urllib.parse.urlparse(uri).query)
    b32 = q["secret"][0]
    secret = base64.b32decode(b32 + "=" * (-len(b32) % 8))

    avoid_step_edge()
    # prove with the previous step's code, so the current one stays fresh
    run(ZTCTL, "-c", gw.trustd_conf, "--actor", "pytest", "user",
        "totp-confirm", name, "--code", totp(secret, time.time() - 30))
    return secret


def signed_in(gw, cert=None, next_path="/"):
    b = Browser(gw, cert)
    status, headers, _ = b.login("alice", PASSWORD,
                                 totp(gw.secret, time.time()), next_path)
    assert status == 303, status
    assert "__Host-zt_session" in b.cookies
    return b


# --- sign-in ------------------------------------------------------------------

def test_unauthenticated_request_is_sent_to_the_portal(igw):
    r = igw.get("/private/doc?x=1")

    assert r.status == 302
    assert rel(r.headers["Location"]) == "/zt/login?next=/private/doc%3Fx%3D1"


def test_sign_in_with_password_and_code_reaches_the_application(igw):
    b = Browser(igw)
    status, headers, _ = b.login("alice", PASSWORD,
                                 totp(igw.secret, time.time()),
                                 "/private/doc")

    assert status == 303
    assert rel(headers["Location"]) == "/private/doc"
    cookie = [v for k, v in headers.items() if k.lower() == "set-cookie"]
    status, _, body = b.request("GET", "/private/doc")
    assert status == 200
    seen = {k.lower(): v for k, v in json.loads(body)["headers"]}
    assert seen["x-zt-user"] == "alice"
    assert seen["x-zt-groups"] == "staff"
    assert re.fullmatch(r"[0-9a-f]{32}", seen["x-zt-session"])
    assert seen["x-zt-assertion"].count(".") == 2
    assert cookie


def test_session_cookie_is_secure_httponly_and_host_only(igw):
    b = Browser(igw)
    fields = b.form("/zt/login")
    fields.update(user="alice", password=PASSWORD,
                  code=totp(igw.secret, time.time()))
    conn = igw.connect()
    conn.request("POST", "/zt/login", body=urllib.parse.urlencode(fields),
                 headers={"Content-Type":
                          "application/x-www-form-urlencoded",
                          "Cookie": "; ".join("%s=%s" % kv for kv in
                                              b.cookies.items())})
    r = conn.getresponse()
    r.read()
    conn.close()

    cookies = [v for k, v in r.getheaders() if k.lower() == "set-cookie"]
    session = [c for c in cookies if c.startswith("__Host-zt_session=")][0]
    for attr in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert attr in session
    assert "Domain" not in session


@pytest.mark.parametrize("case", ["wrong password", "wrong code",
                                  "code from two steps ago",
                                  "unknown user"])
def test_bad_credentials_are_refused(igw, case):
    now = time.time()
    user, password, code = "alice", PASSWORD, totp(igw.secret, now)
    if case == "wrong password":
        password = "not the password at all"
    elif case == "wrong code":
        code = str((int(code) + 1) % 1000000).zfill(6)
    elif case == "code from two steps ago":
        code = totp(igw.secret, now - 60)
    else:
        user = "mallory"

    status, _, body = Browser(igw).login(user, password, code)

    assert status == 403
    assert "__Host-zt_session" not in body.decode()


def test_a_used_code_is_refused_a_second_time(igw):
    code = totp(igw.secret, time.time())
    first = Browser(igw).login("alice", PASSWORD, code)
    second = Browser(igw).login("alice", PASSWORD, code)

    assert first[0] == 303
    assert second[0] == 403


def test_five_failures_lock_the_user_until_the_lock_expires(igw):
    for _ in range(5):
        assert Browser(igw).login("alice", "wrong password!!", "000000")[0] \
            == 403

    status, _, body = Browser(igw).login("alice", PASSWORD,
                                         totp(igw.secret, time.time()))
    assert status == 403
    shown = run(ZTCTL, "-s", igw.store, "user", "show", "alice").stdout
    assert "locked" in shown.lower()

    time.sleep(3.5)   # lockout_time 3s in the test configuration
    status, _, _ = Browser(igw).login("alice", PASSWORD,
                                      totp(igw.secret, time.time() + 30))
    assert status == 303


def test_login_form_without_csrf_token_is_refused(igw):
    b = Browser(igw)
    b.form("/zt/login")
    status, _, _ = b.request("POST", "/zt/login", body={
        "user": "alice", "password": PASSWORD,
        "code": totp(igw.secret, time.time()), "next": "/"})

    assert status == 403


# --- device binding -----------------------------------------------------------

def test_session_is_bound_to_the_device_it_signed_in_from(igw):
    laptop = igw.issue_device("alice-laptop")
    igw.enroll(laptop[0])
    other = igw.issue_device("other-laptop")
    igw.enroll(other[0], owner="bob")

    b = signed_in(igw, cert=laptop)
    assert b.request("GET", "/private/x")[0] == 200

    b.cert = other
    assert b.request("GET", "/private/x")[0] == 302
    b.cert = None
    assert b.request("GET", "/private/x")[0] == 302
    assert "bound to another device" in igw.trustd_log()


# --- tokens an attacker makes ------------------------------------------------

def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(igw, header, claims, key=None, sig=None):
    h = b64u(json.dumps(header).encode())
    p = b64u(json.dumps(claims).encode())
    if sig is None:
        sig = b""
        if key is not None:
            sig = hmac.new(key, (h + "." + p).encode(),
                           hashlib.sha256).digest()
    return "%s.%s.%s" % (h, p, b64u(sig))


def token_parts(b):
    tok = b.cookies["__Host-zt_session"]
    h, p, s = tok.split(".")
    pad = lambda x: x + "=" * (-len(x) % 4)
    return (json.loads(base64.urlsafe_b64decode(pad(h))),
            json.loads(base64.urlsafe_b64decode(pad(p))), tok)


@pytest.mark.parametrize("trick", [
    "alg none", "expired", "not yet valid", "tampered payload",
    "signature stripped", "another deployment's key", "unknown kid",
    "oversized", "malformed base64"])
def test_forged_or_damaged_tokens_are_refused(igw, trick):
    b = signed_in(igw)
    header, claims, token = token_parts(b)
    key = open(os.path.join(igw.keys, "session.key"), "rb").read()
    now = int(time.time())

    if trick == "alg none":
        bad = forge(igw, dict(header, alg="none"), claims)
    elif trick == "expired":
        bad = forge(igw, header, dict(claims, exp=now - 10), key)
    elif trick == "not yet valid":
        bad = forge(igw, header, dict(claims, nbf=now + 3600), key)
    elif trick == "tampered payload":
        bad = forge(igw, header, dict(claims, sub="admin"),
                    sig=base64.urlsafe_b64decode(
                        token.split(".")[2] + "=="))
    elif trick == "signature stripped":
        bad = token.rsplit(".", 1)[0] + "."
    elif trick == "another deployment's key":
        bad = forge(igw, header, claims, os.urandom(32))
    elif trick == "unknown kid":
        bad = forge(igw, dict(header, kid="0123456789abcdef"), claims, key)
    elif trick == "oversized":
        bad = forge(igw, header, dict(claims, pad="x" * 5000), key)
    else:
        bad = token[:20] + "!!" + token[22:]

    b.cookies["__Host-zt_session"] = bad
    status, headers, _ = b.request("GET", "/private/x")

    assert status == 302
    assert rel(headers["Location"]).startswith("/zt/login")


def test_a_validly_signed_token_for_a_revoked_session_is_refused(igw):
    b = signed_in(igw)
    assert b.request("GET", "/private/x")[0] == 200

    run(ZTCTL, "-s", igw.store, "session", "revoke-user", "alice")

    assert b.request("GET", "/private/x")[0] == 302


# --- sign-out, step-up --------------------------------------------------------

def test_sign_out_revokes_the_session_at_once(igw):
    b = signed_in(igw)
    _, _, token = token_parts(b)
    fields = b.form("/zt/logout")

    status, _, _ = b.request("POST", "/zt/logout", body=fields)

    assert status == 200
    assert "__Host-zt_session" not in b.cookies
    b.cookies["__Host-zt_session"] = token
    assert b.request("GET", "/private/x")[0] == 302


def test_step_up_asks_for_a_fresh_code_and_returns(igw):
    b = signed_in(igw, next_path="/admin/users")
    assert b.request("GET", "/admin/users")[0] == 200

    time.sleep(4.5)   # the rule wants a second factor younger than 3s
    # (timestamps are whole seconds: leave a second of margin)
    status, headers, _ = b.request("GET", "/admin/users")
    assert status == 302
    assert rel(headers["Location"]) == "/zt/step-up?next=/admin/users"

    fields = b.form(rel(headers["Location"]))
    fields["code"] = totp(igw.secret, time.time() + 30)
    status, headers, _ = b.request("POST", "/zt/step-up", body=fields)
    assert status == 303
    assert rel(headers["Location"]) == "/admin/users"
    assert b.request("GET", "/admin/users")[0] == 200


# --- redirects ----------------------------------------------------------------

@pytest.mark.parametrize("target", [
    "//evil.example/", "https://evil.example/", "/\\evil.example",
    "%2F%2Fevil.example", "/%2F%2Fevil.example", "https:evil.example",
    "https://localhost@evil.example/", "javascript:alert(1)",
    "http://localhost/", "\\\\evil.example"])
def test_open_redirects_go_nowhere_outside_the_configured_hosts(igw, target):
    b = Browser(igw)
    fields = b.form("/zt/login")
    fields.update(user="alice", password=PASSWORD,
                  code=totp(igw.secret, time.time()), next=target)

    status, headers, _ = b.request("POST", "/zt/login", body=fields)

    assert status == 303
    u = urllib.parse.urlsplit(headers["Location"])
    assert u.netloc in ("", "localhost:%d" % igw.port), headers["Location"]
    loc = rel(headers["Location"])
    assert loc == "/" or (loc.startswith("/") and not loc.startswith("//")
                          and "\\" not in loc and "evil" not in loc)


# --- the upstream assertion ---------------------------------------------------

def test_the_jwks_verifies_the_upstream_assertion(igw):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    b = signed_in(igw)
    status, _, body = b.request("GET", "/private/x")
    assert status == 200
    seen = {k.lower(): v for k, v in json.loads(body)["headers"]}
    assertion = seen["x-zt-assertion"]

    status, _, jwks = b.request("GET", "/zt/jwks.json")
    assert status == 200
    jwk = json.loads(jwks)["keys"][0]
    pad = lambda x: x + "=" * (-len(x) % 4)
    x = int.from_bytes(base64.urlsafe_b64decode(pad(jwk["x"])), "big")
    y = int.from_bytes(base64.urlsafe_b64decode(pad(jwk["y"])), "big")
    pub = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()

    h, p, s = assertion.split(".")
    raw = base64.urlsafe_b64decode(pad(s))
    der = utils.encode_dss_signature(int.from_bytes(raw[:32], "big"),
                                     int.from_bytes(raw[32:], "big"))
    pub.verify(der, (h + "." + p).encode(), ec.ECDSA(hashes.SHA256()))

    claims = json.loads(base64.urlsafe_b64decode(pad(p)))
    assert claims["sub"] == "alice"
    assert claims["sid"] == seen["x-zt-session"]
    assert claims["exp"] > time.time()
    assert json.loads(base64.urlsafe_b64decode(pad(h)))["kid"] == jwk["kid"]


# --- languages, key rotation, algorithm confusion ----------------------------

def test_portal_speaks_traditional_chinese_when_asked(igw):
    b = Browser(igw)
    status, headers, body = b.request(
        "GET", "/zt/login", headers={"Accept-Language": "zh-TW,zh;q=0.9"})

    assert status == 200
    page = body.decode()
    assert 'lang="zh-TW"' in page
    assert "登入" in page

    status, _, body = b.request("GET", "/zt/login",
                                headers={"Accept-Language": "en-US"})
    assert 'lang="en"' in body.decode()


def test_rotated_key_keeps_old_sessions_for_the_grace_period(make_gateway):
    gw = make_gateway(policy=POLICY, identity=True)
    gw.secret = enroll_user(gw, "alice", groups=("staff",))
    b = signed_in(gw)
    old_kid = token_parts(b)[0]["kid"]

    out = run(ZTCTL, "-c", gw.trustd_conf, "keys", "rotate").stdout
    assert "rotated" in out and "ok" in out

    # the old token still works (grace), a new sign-in gets the new key
    assert b.request("GET", "/private/x")[0] == 200
    fresh = Browser(gw)
    status, _, _ = fresh.login("alice", PASSWORD,
                               totp(gw.secret, time.time() + 30))
    assert status == 303
    assert token_parts(fresh)[0]["kid"] != old_kid
    assert fresh.request("GET", "/private/x")[0] == 200


def test_hs256_token_signed_with_the_es256_public_key_is_refused(
        make_gateway):
    from cryptography.hazmat.primitives import serialization

    gw = make_gateway(policy=POLICY, identity=True,
                      trustd_extra="token_alg ES256")
    gw.secret = enroll_user(gw, "alice", groups=("staff",))
    b = signed_in(gw)
    header, claims, token = token_parts(b)
    assert header["alg"] == "ES256"
    assert b.request("GET", "/private/x")[0] == 200

    priv = serialization.load_pem_private_key(
        open(os.path.join(gw.keys, "session.key"), "rb").read(), None)
    pub_pem = priv.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo)
    b.cookies["__Host-zt_session"] = forge(gw, dict(header, alg="HS256"),
                                           claims, pub_pem)

    status, headers, _ = b.request("GET", "/private/x")
    assert status == 302
    assert "alg" in gw.trustd_log()
