"""Session-token tricks: every forged or damaged token is refused (the
request is sent to sign in, never allowed), and none opens /admin."""

import base64
import json
import os
import time

import pytest

from conftest import b64u, forge, get_raw, token_parts


@pytest.fixture(scope="module")
def alice(shared):
    return shared.sign_in("alice", groups=("staff",))


def hs256_key(gw):
    return open(os.path.join(gw.keys, "session.key"), "rb").read()


def bad_token(gw, b, trick):
    header, claims, token = token_parts(b)
    key = hs256_key(gw)
    now = int(time.time())
    h, p, s = token.split(".")

    if trick == "alg none":
        return forge(gw, dict(header, alg="none"), dict(claims,
                     groups=["admins"]))
    if trick == "alg none, upper case":
        return forge(gw, dict(header, alg="NONE"), claims)
    if trick == "alg missing":
        return forge(gw, {k: v for k, v in header.items() if k != "alg"},
                     claims, key)
    if trick == "algorithm confusion: HS512 with the key":
        import hashlib
        import hmac
        hh = b64u(json.dumps(dict(header, alg="HS512")).encode())
        sig = hmac.new(key, (hh + "." + p).encode(), hashlib.sha512).digest()
        return "%s.%s.%s" % (hh, p, b64u(sig))
    if trick == "algorithm confusion: ES256 header on an HS256 signature":
        return forge(gw, dict(header, alg="ES256"), claims, key)
    if trick == "kid path traversal":
        return forge(gw, dict(header, kid="../../../../dev/null"), claims,
                     b"")
    if trick == "kid injection":
        return forge(gw, dict(header, kid="x' OR '1'='1"), claims, key)
    if trick == "kid of another key file":
        return forge(gw, dict(header, kid="../keys/session.key"), claims,
                     b"")
    if trick == "unknown kid":
        return forge(gw, dict(header, kid="0123456789abcdef"), claims, key)
    if trick == "expired":
        return forge(gw, header, dict(claims, exp=now - 10), key)
    if trick == "not yet valid":
        return forge(gw, header, dict(claims, nbf=now + 3600), key)
    if trick == "issued in the future":
        return forge(gw, header, dict(claims, iat=now + 3600), key)
    if trick == "tampered payload":
        return forge(gw, header, dict(claims, sub="root"),
                     sig=base64.urlsafe_b64decode(s + "=="))
    if trick == "signature stripped":
        return h + "." + p + "."
    if trick == "signature missing":
        return h + "." + p
    if trick == "another deployment's key":
        return forge(gw, header, dict(claims, sub="root"), os.urandom(32))
    if trick == "oversized":
        return forge(gw, header, dict(claims, pad="x" * 20000), key)
    if trick == "malformed base64":
        return token[:20] + "!!" + token[22:]
    if trick == "padding in base64":
        return h + "==." + p + "." + s
    if trick == "extra segment":
        return token + "." + s
    if trick == "empty":
        return ""
    raise AssertionError(trick)


TRICKS = [
    "alg none", "alg none, upper case", "alg missing",
    "algorithm confusion: HS512 with the key",
    "algorithm confusion: ES256 header on an HS256 signature",
    "kid path traversal", "kid injection", "kid of another key file",
    "unknown kid", "expired", "not yet valid", "issued in the future",
    "tampered payload", "signature stripped", "signature missing",
    "another deployment's key", "oversized", "malformed base64",
    "padding in base64", "extra segment", "empty"]


@pytest.mark.parametrize("trick", TRICKS)
def test_a_forged_or_damaged_token_is_refused(shared, alice, trick):
    token = bad_token(shared.gw, alice, trick)
    cookies = dict(alice.cookies, **{"__Host-zt_session": token})

    r = get_raw(shared.gw, "/reports/q3", cookies=cookies)
    assert r is None or r.status in (302, 400, 431), r.status
    if r is not None and r.status == 302:
        assert "/zt/login" in r.header("Location")[0]

    # /admin's deny for non-admins wins over sending them to sign in
    r = get_raw(shared.gw, "/admin/users", cookies=cookies)
    assert r is None or r.status in (302, 400, 403, 431), r.status


def test_the_genuine_token_still_works(shared, alice):
    """The control for the cases above."""
    r = get_raw(shared.gw, "/reports/q3", cookies=alice.cookies)

    assert r.status == 200


def test_a_token_bound_to_another_device_is_refused(shared):
    gw = shared.gw
    laptop = gw.issue_device("carol-laptop")
    gw.enroll(laptop[0], owner="carol")
    other = gw.issue_device("mallory-laptop")
    gw.enroll(other[0], owner="mallory")
    b = shared.sign_in("carol", groups=("staff",), cert=laptop)

    assert get_raw(gw, "/reports/q3", cookies=b.cookies,
                   cert=laptop).status == 200
    assert get_raw(gw, "/reports/q3", cookies=b.cookies,
                   cert=other).status == 302
    assert get_raw(gw, "/reports/q3", cookies=b.cookies).status == 302


def test_two_session_cookies_do_not_mix(shared, alice):
    """A forged cookie next to a genuine one must not win."""
    genuine = alice.cookies["__Host-zt_session"]
    forged = bad_token(shared.gw, alice, "alg none")
    for pair in ((forged, genuine), (genuine, forged)):
        r = get_raw(shared.gw, "/admin/users", extra=[
            b"Cookie: __Host-zt_session=" + pair[0].encode()
            + b"; __Host-zt_session=" + pair[1].encode()])
        assert r.status in (302, 403)
