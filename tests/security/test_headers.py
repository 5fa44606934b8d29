"""Header tricks: identity headers a client sends, addresses and paths
claimed by proxy headers, a forged client-certificate header, and Host /
absolute-URI mismatches."""

import pytest

from conftest import get_raw

FORGED_IDENTITY = [
    (b"X-ZT-User", b"root"),
    (b"X-ZT-Groups", b"admins"),
    (b"x-zt-user", b"root"),
    (b"X-Zt-Session", b"0" * 32),
    (b"X-ZT-Decision", b"allow-forged"),
    (b"X-ZT-Device-Owner", b"root"),
    (b"X-ZT-Assertion", b"e30.e30.x"),
    (b"Remote-User", b"root"),
]


@pytest.fixture(scope="module")
def alice(shared):
    return shared.sign_in("alice", groups=("staff",))


def headers(pairs):
    return [k + b": " + v for k, v in pairs]


@pytest.mark.parametrize("name,value", FORGED_IDENTITY,
                         ids=[n.decode() for n, _ in FORGED_IDENTITY])
def test_a_forged_identity_header_does_not_sign_anyone_in(shared, name,
                                                          value):
    r = get_raw(shared.gw, "/reports/q3", extra=headers([(name, value)]))

    assert r.status == 302
    assert "/zt/login" in r.header("Location")[0]


@pytest.mark.parametrize("name,value", FORGED_IDENTITY,
                         ids=[n.decode() for n, _ in FORGED_IDENTITY])
def test_a_forged_identity_header_never_reaches_the_upstream(shared, alice,
                                                             name, value):
    """Twice, to try duplicates: only trustd's values arrive."""
    r = get_raw(shared.gw, "/reports/q3", cookies=alice.cookies,
                extra=headers([(name, value), (name, value + b"2")]))

    assert r.status == 200
    seen = [(k.lower(), v) for k, v in r.json()["headers"]]
    assert all(v not in (value.decode(), value.decode() + "2")
               for k, v in seen if k.startswith("x-zt-")
               or k == "remote-user"), seen
    assert [v for k, v in seen if k == "x-zt-user"] == ["alice"]
    assert not [v for k, v in seen if k == "remote-user"]


def test_forged_groups_do_not_open_admin(shared, alice):
    r = get_raw(shared.gw, "/admin/users", cookies=alice.cookies,
                extra=[b"X-ZT-Groups: admins", b"X-ZT-User: root",
                       b"X_ZT_Groups: admins"])

    assert r.status == 403


@pytest.mark.parametrize("header", [
    b"X-Forwarded-For: 10.1.2.3", b"X-Real-IP: 10.1.2.3",
    b"Forwarded: for=10.1.2.3", b"X-Client-IP: 10.1.2.3",
    b"X-Forwarded-For: 127.0.0.1, 10.1.2.3"])
def test_a_claimed_client_address_does_not_enter_the_office(shared, alice,
                                                            header):
    r = get_raw(shared.gw, "/office/plan", cookies=alice.cookies,
                extra=[header])

    assert r.status == 403


@pytest.mark.parametrize("header", [
    b"X-Original-URL: /admin/users", b"X-Rewrite-URL: /admin/users"])
def test_a_path_override_header_does_not_open_admin_unauthenticated(
        shared, header):
    r = get_raw(shared.gw, "/reports/q3", extra=[header])

    assert r.status == 302


# Path-override headers are removed from client requests by the module.
@pytest.mark.parametrize("header", [b"X-Original-URL", b"X-Rewrite-URL"])
def test_a_path_override_header_never_reaches_the_upstream(shared, alice,
                                                           header):
    r = get_raw(shared.gw, "/reports/q3", cookies=alice.cookies,
                extra=[header + b": /admin/users"])

    assert r.status in (200, 403)
    if r.status == 200:
        seen = [k.lower() for k, v in r.json()["headers"]]
        assert header.decode().lower() not in seen


@pytest.mark.parametrize("header", [
    b"X-SSL-Client-Verify: SUCCESS", b"X-Client-Verify: SUCCESS",
    b"X-ZT-Device-Fp: " + b"ab" * 32,
    b"X-SSL-Client-Cert: -----BEGIN CERTIFICATE-----MIIB-----END "
    b"CERTIFICATE-----",
    b"SSL-Client-Cert: :MIIB:"])
def test_a_forged_client_certificate_header_is_not_a_device(shared, alice,
                                                            header):
    r = get_raw(shared.gw, "/device/inventory", cookies=alice.cookies,
                extra=[header])

    assert r.status == 403


@pytest.mark.parametrize("target,host", [
    (b"/reports/q3", b"evil.example"),
    (b"https://evil.example/reports/q3", b"localhost"),
    (b"/reports/q3", b"localhost.evil.example"),
    (b"/reports/q3", b"evil.example#localhost"),
])
def test_a_host_we_do_not_serve_is_denied(shared, alice, target, host):
    r = get_raw(shared.gw, target, cookies=alice.cookies, host=host)

    assert r is None or r.status in (400, 403, 421)


def test_an_absolute_uri_decides_on_its_own_path(shared, alice):
    r = get_raw(shared.gw, b"https://localhost/admin/users",
                cookies=alice.cookies, host=b"other.example")

    assert r.status in (400, 403)


def test_two_host_headers_are_refused(shared, alice):
    r = get_raw(shared.gw, b"/reports/q3", cookies=alice.cookies,
                extra=[b"Host: evil.example"])

    assert r is None or r.status == 400
