"""The policy language in trustd, through real nginx (issue 3)."""

import os
import signal
import subprocess

import pytest

from conftest import TRUSTD, ZTCTL, run

BASE = """
network loopback = 127.0.0.0/8, ::1

app "gateway" {
    host "localhost"

    rule "open area" {
        path prefix "/open"
        allow
        header "X-App-Role" = "reader"
    }

    rule "blocked area" {
        path prefix "/blocked"
        deny 451 "blocked for this test"
    }

    rule "devices of alice" {
        path prefix "/alice"
        when device.known and device.owner == "alice" and source in loopback
        allow
    }

    rule "sign in first" {
        path prefix "/private"
        when not user.authenticated
        login
    }

    rule "staged tightening" {
        path prefix "/open/staged"
        deny "would be too strict today"
        report-only
    }
}
"""


@pytest.fixture
def pgw(make_gateway):
    return make_gateway(policy=BASE)


def test_an_allow_rule_allows_and_its_headers_reach_the_upstream(pgw):
    r = pgw.get("/open/page", headers={"X-App-Role": "admin"})

    assert r.status == 200
    assert r.upstream_header("X-App-Role") == ["reader"]
    assert r.upstream_header("X-ZT-Decision") == ["allow"]


def test_a_deny_rule_denies_with_its_status_and_reason(pgw):
    r = pgw.get("/blocked/x")

    assert r.status == 451
    assert 'rule "blocked area": blocked for this test' in pgw.error_log()


def test_a_request_no_rule_matches_is_denied(pgw):
    assert pgw.get("/elsewhere").status == 403
    assert "no rule allows this request" in pgw.error_log()


def test_a_request_for_an_unknown_host_is_denied(pgw):
    r = pgw.get("/open/page", headers={"Host": "other.example"})

    assert r.status == 403


def test_report_only_rule_is_logged_but_does_not_change_the_decision(pgw):
    r = pgw.get("/open/staged/page")

    assert r.status == 200
    assert [m for m in pgw.trustd_messages()
            if 'report-only: rule "staged tightening" would deny' in m]


def test_device_conditions_see_the_enrolled_device(pgw):
    alice = pgw.issue_device("alice-laptop")
    pgw.enroll(alice[0], owner="alice")
    bob = pgw.issue_device("bob-laptop")
    pgw.enroll(bob[0], owner="bob")

    assert pgw.get("/alice/x", cert=alice).status == 200
    assert pgw.get("/alice/x", cert=bob).status == 403
    assert pgw.get("/alice/x").status == 403


def test_a_revoked_device_is_denied_even_where_policy_allows_everyone(pgw):
    cert = pgw.issue_device("lost-laptop")
    pgw.enroll(cert[0])
    assert pgw.get("/open/x", cert=cert).status == 200

    pgw.ztctl("device", "revoke", pgw.fingerprint(cert[0]))

    assert pgw.get("/open/x", cert=cert).status == 403
    assert pgw.get("/open/x").status == 200


def test_login_rule_redirects_to_the_portal_with_the_way_back(pgw):
    r = pgw.get("/private/report?id=7")

    assert r.status == 302
    assert r.headers["Location"] == (
        "https://localhost/zt/login?next=https%3A//localhost/private/report"
        "%3Fid%3D7")
    assert "zt/login" in pgw.get("/private/x").headers["Location"]


def test_broken_policy_on_sighup_keeps_the_old_one_serving(pgw):
    pgw.write_policy('app "gateway" {\n    host "localhost"\n'
                     '    rule "x" { path prefix "/open" alow }\n}\n')

    pgw.reload_trustd()

    log = pgw.trustd_log()
    assert "main.policy:3:" in log
    assert "reload failed" in log
    assert pgw.get("/open/page").status == 200
    assert pgw.get("/blocked/x").status == 451


def test_ztctl_policy_reload_returns_errors_and_applies_a_good_policy(pgw):
    pgw.write_policy('app "gateway" { host "localhost"\n'
                     '  rule "r" { when device.posture.firewal allow } }\n')

    p = run(ZTCTL, "-c", pgw.trustd_conf, "policy", "reload",
            check=False)

    assert p.returncode == 1
    assert "main.policy:2:" in p.stderr
    assert "device.posture.firewal" in p.stderr
    assert pgw.get("/open/page").status == 200

    pgw.write_policy('app "gateway" {\n    host "localhost"\n'
                     '    rule "only blocked" { path prefix "/blocked" '
                     'allow }\n}\n')
    p = run(ZTCTL, "-c", pgw.trustd_conf, "policy", "reload")

    assert p.stdout.startswith("ok policy ")
    assert pgw.get("/blocked/x").status == 200
    assert pgw.get("/open/page").status == 403


def test_trustd_refuses_to_start_with_a_broken_policy(make_gateway):
    gw = make_gateway(policy=BASE)
    gw.kill_trustd(signal.SIGTERM)
    gw.write_policy("app \"gateway\" {\n  host \"localhost\"\n  rule \"r\" "
                    "{ when trust.score >= 70m allow }\n}\n")

    p = subprocess.run([TRUSTD, "-f", "-c", gw.trustd_conf],
                       capture_output=True, text=True, timeout=20)

    assert p.returncode != 0
    assert "main.policy:3:" in p.stderr
    assert not os.path.exists(gw.sock)


def test_trustd_config_check_also_checks_the_policy(make_gateway):
    gw = make_gateway(policy=BASE)

    ok = subprocess.run([TRUSTD, "-n", "-c", gw.trustd_conf],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "configuration OK" in ok.stdout

    gw.write_policy('app "gateway" {\n  host "localhost"\n'
                    '  rule "r" { when user.grups allow }\n}\n')
    bad = subprocess.run([TRUSTD, "-n", "-c", gw.trustd_conf],
                         capture_output=True, text=True)

    assert bad.returncode == 1
    assert "main.policy:3:" in bad.stderr and "user.grups" in bad.stderr
