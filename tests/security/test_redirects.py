"""Open-redirect forms: after sign-in the portal may only send the user
back into the gateway (the configured host), whatever `next` says; and
the gateway's own redirect to sign in never points elsewhere."""

import itertools
import time
import urllib.parse

import pytest

from conftest import PASSWORD, Browser, get_raw, totp

TARGETS = [
    "//evil.example/", "///evil.example/", "////evil.example",
    "https://evil.example/", "http://evil.example/", "https:evil.example",
    "https:/evil.example", "/\\evil.example", "\\\\evil.example",
    "/%5Cevil.example", "%2F%2Fevil.example", "/%2F%2Fevil.example",
    "/%2f/evil.example", "/\t/evil.example", "/%09/evil.example",
    "/\r\nLocation: https://evil.example", "/%0d%0aSet-Cookie:%20x=1",
    "https://localhost@evil.example/", "https://localhost:443@evil.example",
    "https://evil.example#@localhost", "https://evil.example\\@localhost",
    "https://evil.example%2F@localhost", "https://localhost.evil.example/",
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,x",
    "http://localhost/", "http://127.0.0.1/", "ftp://localhost/",
    "  //evil.example", "/.//evil.example", "//%65vil.example",
]

_names = ("r%d" % i for i in itertools.count())


def safe_location(gw, location):
    assert "\r" not in location and "\n" not in location, location
    u = urllib.parse.urlsplit(location)
    assert u.scheme in ("", "https"), location
    assert u.netloc in ("", "localhost:%d" % gw.port), location
    path = u.path
    assert path.startswith("/") and not path.startswith("//"), location
    assert "\\" not in path and "evil" not in u.netloc, location


@pytest.mark.parametrize("target", TARGETS)
def test_sign_in_never_redirects_off_the_gateway(shared, target):
    name = next(_names)
    secret = shared.user(name)
    b = Browser(shared.gw)
    fields = b.form("/zt/login")
    fields.update(user=name, password=PASSWORD,
                  code=totp(secret, time.time()), next=target)

    status, headers, _ = b.request("POST", "/zt/login", body=fields)

    assert status in (303, 400), status
    if status == 303:
        safe_location(shared.gw, headers["Location"])


@pytest.mark.parametrize("target", [
    b"//evil.example/x", b"/%2F%2Fevil.example", b"/%5C%5Cevil.example",
    b"/x?next=https://evil.example", b"https://localhost//evil.example/"])
def test_the_redirect_to_sign_in_stays_on_the_gateway(shared, target):
    r = get_raw(shared.gw, target)

    if b"%5C" in target:
        # a backslash path is refused outright (zt_strict_paths)
        assert r.status == 400
        return
    assert r.status == 302
    loc = r.header("Location")[0]
    safe_location(shared.gw, loc)

    # and signing in from there lands on the gateway too
    name = next(_names)
    secret = shared.user(name)
    b = Browser(shared.gw)
    u = urllib.parse.urlsplit(loc)
    fields = b.form(u.path + "?" + u.query)
    fields.update(user=name, password=PASSWORD,
                  code=totp(secret, time.time()))
    status, headers, _ = b.request("POST", "/zt/login", body=fields)
    assert status == 303
    safe_location(shared.gw, headers["Location"])
