"""Path tricks against a rule that protects /admin (group "admins" only)
while any signed-in user may reach everything else.

A case is safe when the request is refused, or when the path the upstream
RECEIVED does not name /admin under the most lenient reading a common
application server gives it (see upstream_view).  Letter case is not
folded: policy paths are documented as case-sensitive (docs/policy.md),
so a case variant is safe as long as it reaches the upstream unchanged.
"""

import re
import urllib.parse

import pytest

from conftest import get_raw

GAP_RAW = ("the policy decides on nginx's normalized $uri but proxy_pass "
           "without a URI part forwards the client's raw request line "
           "(ngx_module/ngx_http_zt_module.c sends $uri to trustd; the "
           "location forwards $request_uri), so an application server that "
           "reads the path more leniently than nginx serves /admin to a "
           "non-admin: ")


def upstream_view(raw):
    """The path an upstream sees under the most lenient common reading:
    percent-decoded once, overlong UTF-8 decoded, cut at NUL, backslash as
    slash (IIS), ';' parameters dropped per segment (servlet containers),
    trailing dots and spaces dropped (Windows), dot segments resolved and
    empty segments merged."""
    p = raw.split("?", 1)[0].split("#", 1)[0]
    b = urllib.parse.unquote_to_bytes(p)
    b = re.sub(rb"[\xc0\xc1][\x80-\xbf]",
               lambda m: bytes([((m.group(0)[0] & 0x1f) << 6)
                                | (m.group(0)[1] & 0x3f)]), b)
    b = b.split(b"\0", 1)[0]
    s = b.decode("latin-1").replace("\\", "/")
    out = []
    for seg in s.split("/"):
        seg = seg.split(";", 1)[0]
        if seg not in (".", ".."):
            seg = seg.rstrip(". ")
        if seg in ("", "."):
            continue
        if seg == "..":
            if out:
                out.pop()
            continue
        out.append(seg)
    return "/" + "/".join(out)


def reaches_admin(r):
    if r is None or r.status != 200:
        return False
    view = upstream_view(r.json()["path"])
    return view == "/admin" or view.startswith("/admin/")


@pytest.fixture(scope="module")
def alice(shared):
    return shared.sign_in("alice", groups=("staff",))


@pytest.fixture(scope="module")
def root(shared):
    return shared.sign_in("root", groups=("admins",))


# --- controls: the rule works for the plain path -----------------------------

def test_an_admin_reaches_admin(shared, root):
    r = get_raw(shared.gw, "/admin/users", cookies=root.cookies)

    assert r.status == 200
    assert r.json()["path"] == "/admin/users"


def test_a_signed_in_non_admin_is_denied_admin(shared, alice):
    r = get_raw(shared.gw, "/admin/users", cookies=alice.cookies)

    assert r.status == 403


def test_a_signed_in_non_admin_reaches_the_rest(shared, alice):
    r = get_raw(shared.gw, "/reports/q3", cookies=alice.cookies)

    assert r.status == 200
    assert r.json()["path"] == "/reports/q3"


# --- tricks: each must stay away from /admin ---------------------------------

SAFE = [
    # percent-encoded letters and slashes
    ("encoded letter", "/%61dmin/users"),
    ("every letter encoded", "/%61%64%6D%69%6E/users"),
    ("encoded slash after admin", "/admin%2Fusers"),
    ("encoded leading slash", "/%2Fadmin/users"),
    ("double-encoded letter", "/%2561dmin/users"),
    # dot segments
    ("dot segment", "/./admin/users"),
    ("dot-dot segment", "/x/../admin/users"),
    ("encoded dots", "/x/%2e%2e/admin/users"),
    ("encoded dots and slash", "/x/%2E%2E%2Fadmin/users"),
    ("encoded single dot", "/%2e/admin/users"),
    ("dot-dot above the root", "/../../admin/users"),
    # duplicate slashes
    ("double slash", "//admin/users"),
    ("many slashes", "///admin//users"),
    # case variants (paths are case-sensitive: reach upstream unchanged)
    ("upper case", "/ADMIN/users"),
    ("mixed case", "/Admin/users"),
    # query strings that look like paths
    ("query looks like a path", "/x?/../admin/users"),
    ("query names admin", "/x?next=/admin/users"),
    ("encoded question mark", "/x%3F/../admin/users"),
    # the absolute form of the request target
    ("absolute URI", "https://localhost/admin/users"),
    ("fragment", "/admin/users#top"),
    # NUL
    ("encoded NUL after admin", "/admin%00/users"),
    ("encoded NUL before admin", "/%00/../admin/users"),
]

GAPS = [
    ("trailing dot", "/admin./users",
     "Windows file systems drop trailing dots"),
    ("encoded trailing dot", "/admin%2e/users",
     "Windows file systems drop trailing dots"),
    ("trailing space", "/admin%20/users",
     "Windows file systems drop trailing spaces"),
    ("path parameter", "/admin;x=1/users",
     "servlet containers drop ;parameters"),
    ("empty path parameter", "/admin;/users",
     "servlet containers drop ;parameters"),
    ("dot-dot with a parameter", "/x/..;/admin/users",
     "Tomcat reads '..;' as '..'"),
    ("backslash", "/admin%5Cusers",
     "IIS reads a backslash as a slash"),
    ("backslash dot-dot", "/x%5C..%5Cadmin/users",
     "IIS reads a backslash as a slash"),
    ("overlong UTF-8 letter", "/%C1%A1dmin/users",
     "lax UTF-8 decoders read C1 A1 as 'a'"),
    ("overlong UTF-8 slash", "/x%C0%AF..%C0%AFadmin/users",
     "lax UTF-8 decoders read C0 AF as '/'"),
]


@pytest.mark.parametrize("name,target", SAFE, ids=[c[0] for c in SAFE])
def test_path_trick_does_not_reach_admin(shared, alice, name, target):
    r = get_raw(shared.gw, target, cookies=alice.cookies)

    assert not reaches_admin(r), (r.status, r.json()["path"])


# Paths an application server may read as /admin although nginx does
# not: the gateway refuses them (zt_strict_paths, on by default) with 400,
# before any policy is consulted.
@pytest.mark.parametrize("name,target", [(c[0], c[1]) for c in GAPS],
                         ids=[c[0] for c in GAPS])
def test_path_trick_read_leniently_does_not_reach_admin(shared, alice, name,
                                                       target):
    r = get_raw(shared.gw, target, cookies=alice.cookies)

    assert r.status == 400, r.status
    assert not reaches_admin(r)


# The location forwards $zt_uri: the application gets the decided path.
def test_the_upstream_receives_the_path_that_was_decided(shared, alice):
    """The decided path (/reports/q3) and the forwarded one should be the
    same request: an application must not have to resolve dot segments or
    encodings nginx already resolved for the decision."""
    r = get_raw(shared.gw, "/x/%2e%2e/reports/q3", cookies=alice.cookies)

    assert r.status == 200
    assert r.json()["path"] == "/reports/q3"
