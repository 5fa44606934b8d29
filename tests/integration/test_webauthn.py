"""WebAuthn / FIDO2 security keys end to end (issue 10): staff hand out a
one-time enrollment link, the user registers a key in a real headless
Chromium with the DevTools virtual authenticator, signs in with it (AAL3),
steps up with it; and the portal refuses an assertion for another origin,
a replayed challenge, a wrong credential and a sign count that went
backwards (the credential is then suspended)."""

import json
import os
import shutil
import time

import pytest

from conftest import ZTCTL, run, wait_for
from test_identity import PASSWORD, enroll_user

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    HAVE_SELENIUM = True
except ImportError:          # pragma: no cover
    HAVE_SELENIUM = False

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

POLICY = """
app "gateway" {
    host "localhost"

    rule "admin needs a fresh security key" {
        path prefix "/admin"
        when user.authenticated and (auth.aal < 3 or auth.mfa_age > 3s)
        step-up
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

# One ceremony driven from the page, so that the test can spoil it before
# it is posted: arguments[0] is the mode, the last the callback.
CEREMONY_JS = """
var mode = arguments[0], password = arguments[1];
var done = arguments[arguments.length - 1];
function b64u(buf) {
  var b = new Uint8Array(buf), s = '', i;
  for (i = 0; i < b.length; i++) { s += String.fromCharCode(b[i]); }
  return btoa(s).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
}
function unb64u(s) {
  s = s.replace(/-/g, '+').replace(/_/g, '/');
  while (s.length % 4) { s += '='; }
  var r = atob(s), b = new Uint8Array(r.length), i;
  for (i = 0; i < r.length; i++) { b[i] = r.charCodeAt(i); }
  return b;
}
var csrf = document.getElementById('csrf').value;
function post(url, p) {
  return fetch(url, { method: 'POST', credentials: 'same-origin',
    redirect: 'manual', body: new URLSearchParams(p).toString(),
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' } })
    .then(function (r) { return r.type === 'opaqueredirect' ? 303 : r.status; });
}
fetch('/zt/webauthn/login/begin', { method: 'POST', credentials: 'same-origin',
  headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ csrf: csrf, user: 'alice',
                              password: password }).toString() })
.then(function (r) { return r.json(); })
.then(function (o) {
  return navigator.credentials.get({ publicKey: {
    challenge: unb64u(o.challenge), rpId: o.rpId,
    allowCredentials: o.allow.map(function (id) {
      return { type: 'public-key', id: unb64u(id) }; }),
    userVerification: 'required' } })
  .then(function (c) {
    return { csrf: csrf, user: 'alice', challenge: o.challenge, next: '/',
             id: b64u(c.rawId),
             client_data: b64u(c.response.clientDataJSON),
             auth_data: b64u(c.response.authenticatorData),
             signature: b64u(c.response.signature) };
  });
})
.then(function (f) {
  var url = '/zt/webauthn/login/finish';
  if (mode === 'origin') {
    var cd = new TextDecoder().decode(unb64u(f.client_data));
    cd = cd.replace(location.origin, 'https://evil.example');
    f.client_data = b64u(new TextEncoder().encode(cd));
    return post(url, f);
  }
  if (mode === 'wrongcred') {
    f.id = b64u(crypto.getRandomValues(new Uint8Array(16)));
    return post(url, f);
  }
  if (mode === 'replay') {
    return post(url, f).then(function (first) {
      return post(url, f).then(function (second) { return [first, second]; });
    });
  }
  return post(url, f);
})
.then(function (v) { done(v); }, function (e) { done('error: ' + e); });
"""


def _chromium_missing():
    return not (HAVE_SELENIUM and os.path.exists(CHROMIUM)
                and os.path.exists(DRIVER))


@pytest.fixture
def wgw(make_gateway):
    if _chromium_missing():
        if os.environ.get("CI"):
            pytest.fail("chromium, chromium-driver or python3-selenium "
                        "missing in CI")
        pytest.skip("chromium, chromium-driver or python3-selenium missing")
    gw = make_gateway(policy=POLICY, identity=True)
    gw.secret = enroll_user(gw, "alice", groups=("staff",))
    gw.origin = "https://localhost:%d" % gw.port
    gw.trustd_extra += ("\nwebauthn_rp_id localhost\nwebauthn_origin %s\n"
                        % gw.origin)
    gw.write_trustd_conf()
    gw.reload_trustd()
    return gw


@pytest.fixture
def browser(wgw):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
              "--ignore-certificate-errors", "--disable-gpu",
              "--user-data-dir=%s" % os.path.join(wgw.dir, "chromium")):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(DRIVER), options=opts)
    d.set_script_timeout(30)
    d.execute_cdp_cmd("WebAuthn.enable", {})
    d.authenticator = d.execute_cdp_cmd(
        "WebAuthn.addVirtualAuthenticator", {"options": {
            "protocol": "ctap2", "transport": "internal",
            "hasResidentKey": True, "hasUserVerification": True,
            "isUserVerified": True, "automaticPresenceSimulation": True}}
    )["authenticatorId"]
    yield d
    d.quit()


def ztctl(gw, *args, check=True):
    return run(ZTCTL, "-c", gw.trustd_conf, "--actor", "pytest", *args,
               check=check)


def keys_of(gw, user="alice"):
    return json.loads(ztctl(gw, "user", "webauthn-list", user,
                            "--json").stdout)


def register(gw, d, name="YubiKey"):
    link = json.loads(ztctl(gw, "user", "webauthn-enroll", "alice",
                            "--json").stdout)
    assert link["url"].startswith(gw.origin + "/zt/webauthn/register?token=")
    d.get(link["url"])
    d.find_element(By.ID, "password").send_keys(PASSWORD)
    box = d.find_element(By.ID, "keyname")
    box.clear()
    box.send_keys(name)
    d.find_element(By.ID, "zt-go").click()
    wait_for(lambda: d.find_elements(By.ID, "zt-done"), timeout=20,
             what="the key to be registered: "
                  + d.find_element(By.TAG_NAME, "body").text)
    return link


def sign_in(gw, d, next_path="/private/doc"):
    d.get(gw.origin + "/zt/webauthn/login?next=" + next_path)
    d.find_element(By.ID, "user").send_keys("alice")
    d.find_element(By.ID, "password").send_keys(PASSWORD)
    d.find_element(By.ID, "zt-go").click()
    wait_for(lambda: d.current_url == gw.origin + next_path, timeout=20,
             what="sign-in to land on %s (at %s: %s)" % (
                 next_path, d.current_url,
                 d.find_element(By.TAG_NAME, "body").text[:200]))


def session_cookie(d):
    c = d.get_cookie("__Host-zt_session")
    assert c is not None
    return "__Host-zt_session=" + c["value"]


def ceremony(gw, d, mode):
    d.get(gw.origin + "/zt/webauthn/login")
    return d.execute_async_script(CEREMONY_JS, mode, PASSWORD)


# --- registration, sign-in, step-up -----------------------------------------

def test_staff_enrollment_link_registers_a_named_key(wgw, browser):
    link = register(wgw, browser, name="Desk key")
    keys = keys_of(wgw)
    assert len(keys) == 1
    assert keys[0]["name"] == "Desk key"
    assert keys[0]["alg"] == "ES256"
    assert keys[0]["suspended"] is False

    # the link is good for one registration only
    browser.get(link["url"])
    assert "zt-wa" not in browser.page_source


def test_sign_in_with_the_key_reaches_the_app_at_aal3(wgw, browser):
    register(wgw, browser)
    sign_in(wgw, browser)

    r = wgw.get("/private/doc", headers={"Cookie": session_cookie(browser)})
    assert r.status == 200
    assert r.upstream_header("X-ZT-AAL") == ["3"]
    assert r.upstream_header("X-ZT-User") == ["alice"]
    assert keys_of(wgw)[0]["last_used"] > 0

    # the signed assertion says so too (acr, amr)
    import base64
    payload = r.upstream_header("X-ZT-Assertion")[0].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" *
                                                 (-len(payload) % 4)))
    assert claims["acr"] == "http://idmanagement.gov/ns/assurance/aal/3"
    assert "hwk" in claims["amr"]


def test_totp_sign_in_is_aal2_and_cannot_pass_an_aal3_rule(wgw):
    from test_identity import signed_in
    b = signed_in(wgw)
    status, headers, _ = b.request("GET", "/admin/x")
    assert status == 302
    assert "/zt/step-up" in headers["Location"]


def test_step_up_with_the_key(wgw, browser):
    register(wgw, browser)
    sign_in(wgw, browser, "/admin/users")

    time.sleep(4.5)   # the rule wants a key used within 3 s
    r = wgw.get("/admin/users", headers={"Cookie": session_cookie(browser)})
    assert r.status == 302

    browser.get(wgw.origin + "/zt/webauthn/step-up?next=/admin/users")
    browser.find_element(By.ID, "zt-go").click()
    wait_for(lambda: browser.current_url == wgw.origin + "/admin/users",
             timeout=20, what="step-up to return to /admin/users")
    r = wgw.get("/admin/users", headers={"Cookie": session_cookie(browser)})
    assert r.status == 200


# --- refusals -----------------------------------------------------------------

def test_an_assertion_for_another_origin_is_refused(wgw, browser):
    register(wgw, browser)
    assert ceremony(wgw, browser, "origin") == 403
    assert "is not allowed" in wgw.trustd_log()


def test_a_replayed_challenge_is_refused(wgw, browser):
    register(wgw, browser)
    assert ceremony(wgw, browser, "replay") == [303, 403]


def test_a_wrong_credential_is_refused(wgw, browser):
    register(wgw, browser)
    assert ceremony(wgw, browser, "wrongcred") == 403
    assert "not a credential of this user" in wgw.trustd_log()


def test_a_counter_regression_suspends_the_credential(wgw, browser):
    register(wgw, browser)
    assert ceremony(wgw, browser, "plain") == 303
    stored = keys_of(wgw)[0]["sign_count"]
    assert stored > 0

    # a clone: the same key with an older counter
    auth = browser.authenticator
    creds = browser.execute_cdp_cmd("WebAuthn.getCredentials",
                                    {"authenticatorId": auth})["credentials"]
    assert len(creds) == 1
    cred = dict(creds[0])
    browser.execute_cdp_cmd("WebAuthn.removeCredential", {
        "authenticatorId": auth, "credentialId": cred["credentialId"]})
    cred["signCount"] = 0
    browser.execute_cdp_cmd("WebAuthn.addCredential", {
        "authenticatorId": auth, "credential": cred})

    assert ceremony(wgw, browser, "plain") == 403
    assert "webauthn.counter_regression" in wgw.trustd_log()
    assert keys_of(wgw)[0]["suspended"] is True

    audit = ztctl(wgw, "audit", "search", "--action",
                  "webauthn.counter_regression").stdout
    assert "possible cloned authenticator" in audit

    # a suspended key is not offered again
    assert "error" in str(ceremony(wgw, browser, "plain"))


def test_the_code_pages_offer_the_key_and_the_key_pages_speak_chinese(wgw):
    r = wgw.get("/zt/login?next=/private/doc",
                headers={"Accept-Language": "zh-TW"})
    body = r.body.decode()
    assert r.status == 200
    assert 'href="/zt/webauthn/login?next=%2Fprivate%2Fdoc"' in body
    assert "改用安全金鑰" in body

    r = wgw.get("/zt/webauthn/login?next=/private/doc",
                headers={"Accept-Language": "zh-TW,en;q=0.5"})
    body = r.body.decode()
    assert r.status == 200
    assert "使用安全金鑰登入" in body and "改用驗證器驗證碼登入" in body
    assert 'lang="zh-TW"' in body

    r = wgw.get("/zt/webauthn/login", headers={"Accept-Language": "en"})
    assert "Sign in with a security key" in r.body.decode()


def test_without_webauthn_configured_no_key_is_offered(make_gateway):
    gw = make_gateway(policy=POLICY, identity=True)
    r = gw.get("/zt/login")
    assert r.status == 200 and "zt-use-key" not in r.body.decode()


def test_a_user_lists_and_removes_their_own_key(wgw, browser):
    register(wgw, browser, name="Old key")
    sign_in(wgw, browser)

    browser.get(wgw.origin + "/zt/webauthn/keys")
    page = browser.find_element(By.ID, "zt-keys").text
    assert "Old key" in page and "ES256" in page
    browser.find_element(By.CSS_SELECTOR, "#zt-keys button").click()
    wait_for(lambda: browser.find_elements(By.ID, "zt-no-keys"),
             timeout=10, what="the key to be removed")
    assert keys_of(wgw) == []

    audit = wgw.ztctl("audit", "search", "--action", "webauthn.remove",
                      "--json").stdout
    rec = json.loads(audit.splitlines()[-1])
    assert rec["actor"] == "alice"


def test_a_user_cannot_remove_another_users_key(wgw, browser):
    register(wgw, browser, name="Alice key")
    sign_in(wgw, browser)
    alice_key = keys_of(wgw)[0]["id"]

    # bob, signed in with his code, posts alice's key id
    from test_identity import Browser, enroll_user, totp, avoid_step_edge
    bob_secret = enroll_user(wgw, "bob")
    avoid_step_edge()
    b = Browser(wgw)
    status, _, _ = b.login("bob", PASSWORD, totp(bob_secret, time.time()),
                           "/")
    assert status == 303
    form = b.form("/zt/webauthn/login")
    status, _, _ = b.request("POST", "/zt/webauthn/keys/remove",
                             {"csrf": form["csrf"], "id": alice_key})
    assert status == 404
    assert len(keys_of(wgw)) == 1
