"""Device posture through real nginx, trustd, the portal and LMDB: agents
report over their own mTLS connection to /zt/posture, staff record and
import posture with ztctl, the policy sees it, reports go stale, and a
non-compliant device reaches only the remediation routes."""

import json
import os
import subprocess
import time

import pytest

from conftest import ROOT, ZTCTL, run

AGENT = os.path.join(ROOT, "scripts", "ztgate-posture-agent.sh")

POLICY = """
app "gateway" {
    host "localhost"

    rule "remediation" {
        path prefix "/remediation"
        when device.known
        allow
    }

    rule "compliant devices" {
        when device.status == active
            and device.posture.disk_encrypted
            and device.posture.firewall
            and device.posture.age < 1h
        allow
    }
}
"""

GOOD = {
    "os": "debian",
    "os_version": "12.8",
    "patch_time": 1732400000,
    "disk_encrypted": True,
    "firewall": True,
    "screen_lock": True,
    "endpoint_protection": False,
    "reported_at": 1732450000,
}


def post(gw, body, cert=None, content_type="application/json"):
    """POST a posture report; returns (status, parsed JSON or None)."""
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    conn = gw.connect(cert)
    try:
        conn.request("POST", "/zt/posture", body=body,
                     headers={"Content-Type": content_type})
        r = conn.getresponse()
        data = r.read()
    finally:
        conn.close()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, None


def posture(gw, fp):
    return gw.ztctl("device", "posture", fp).stdout


@pytest.fixture
def gw(make_gateway):
    return make_gateway(identity=True, policy=POLICY)


@pytest.fixture
def alice(gw):
    cert = gw.issue_device("alice-laptop")
    return cert, gw.enroll(cert[0], owner="alice")


@pytest.fixture
def bob(gw):
    cert = gw.issue_device("bob-laptop")
    return cert, gw.enroll(cert[0], owner="bob")


# --- reports ----------------------------------------------------------------

def test_a_report_is_stored_for_its_certificate_and_the_policy_sees_it(
        gw, alice):
    cert, fp = alice
    assert gw.get("/app", cert=cert).status == 403

    status, _ = post(gw, GOOD, cert=cert)

    assert status == 204
    out = posture(gw, fp)
    assert "debian" in out and "12.8" in out
    assert "disk encrypted       yes" in out
    assert "endpoint protection  no" in out
    assert "source               agent" in out
    assert "patch date           2024-11-23" in out
    assert gw.get("/app", cert=cert).status == 200
    assert "device.posture" in gw.ztctl("audit", "tail").stdout


def test_a_report_with_the_certificate_of_a_counts_for_a_only(
        gw, alice, bob):
    (a_cert, a_fp), (_, b_fp) = alice, bob

    assert post(gw, GOOD, cert=a_cert)[0] == 204
    # naming the other device in the body is refused, not obeyed
    status, err = post(gw, dict(GOOD, device=b_fp), cert=a_cert)

    assert status == 400 and "device" in err["error"]
    assert "debian" in posture(gw, a_fp)
    assert "never reported" in posture(gw, b_fp)


def test_a_later_report_replaces_the_earlier_one(gw, alice):
    cert, fp = alice
    post(gw, GOOD, cert=cert)

    assert post(gw, dict(GOOD, firewall=False), cert=cert)[0] == 204

    assert "firewall             no" in posture(gw, fp)
    assert gw.get("/app", cert=cert).status == 403


@pytest.mark.parametrize("body,field", [
    ("{not json", "malformed JSON"),
    ("[1, 2]", "object"),
    (dict(GOOD, colour="blue"), "colour"),
    (dict(GOOD, firewall="yes"), "firewall"),
    (dict(GOOD, os="x" * 65), "os"),
    (dict(GOOD, os="debian\n"), "os"),
    (dict(GOOD, patch_time=1.5), "patch_time"),
    (dict(GOOD, patch_time=-1), "patch_time"),
    ({k: v for k, v in GOOD.items() if k != "reported_at"}, "reported_at"),
    ('{"os":"a","os":"b","reported_at":1}', "duplicate"),
])
def test_a_malformed_report_is_refused_naming_the_field_and_changes_nothing(
        gw, alice, body, field):
    cert, fp = alice
    post(gw, GOOD, cert=cert)
    before = posture(gw, fp)

    status, err = post(gw, body, cert=cert)

    assert status == 400
    assert field in err["error"]
    assert posture(gw, fp).split("state")[0] == before.split("state")[0]


def test_an_oversized_report_gets_413_and_changes_nothing(gw, alice):
    cert, fp = alice
    padded = json.dumps(dict(GOOD, firewall=False)) + " " * 5000

    status, err = post(gw, padded, cert=cert)

    assert status == 413 and "too large" in err["error"]
    # beyond nginx's own limit the answer is the same
    assert post(gw, padded + " " * 10000, cert=cert)[0] == 413
    assert "never reported" in posture(gw, fp)


def test_a_report_that_is_not_json_gets_415(gw, alice):
    cert, fp = alice

    status, _ = post(gw, "os=debian", cert=cert,
                     content_type="application/x-www-form-urlencoded")

    assert status == 415
    assert "never reported" in posture(gw, fp)


def test_a_report_without_a_client_certificate_gets_401(gw):
    status, err = post(gw, GOOD)

    assert status == 401 and "certificate" in err["error"]


def test_a_report_from_a_certificate_not_enrolled_gets_403(gw):
    cert = gw.issue_device("stranger")

    status, err = post(gw, GOOD, cert=cert)

    assert status == 403 and "not enrolled" in err["error"]


def test_a_report_from_a_revoked_device_gets_403(gw, alice):
    cert, fp = alice
    gw.ztctl("device", "revoke", fp)

    status, err = post(gw, GOOD, cert=cert)

    assert status == 403 and "revoked" in err["error"]


def test_a_quarantined_device_may_still_report(gw, alice):
    cert, fp = alice
    gw.ztctl("device", "quarantine", fp)

    assert post(gw, GOOD, cert=cert)[0] == 204
    assert "debian" in posture(gw, fp)


# --- staleness ----------------------------------------------------------------

STALE_POLICY = """
app "gateway" {
    host "localhost"

    rule "fresh posture" {
        # stale: no report within trustd's posture_max_age (2s here)
        when device.known and device.posture.firewall
            and not device.posture.stale
        allow
    }
}
"""


def test_a_device_whose_reports_stop_becomes_stale_after_the_max_age(
        make_gateway):
    gw = make_gateway(identity=True, policy=STALE_POLICY,
                      trustd_extra="posture_max_age 2s")
    cert = gw.issue_device("alice-laptop")
    fp = gw.enroll(cert[0])
    ztctl_conf = [ZTCTL, "-c", gw.trustd_conf, "--actor", "pytest"]

    assert post(gw, GOOD, cert=cert)[0] == 204
    assert gw.get("/app", cert=cert).status == 200
    assert "state                fresh" in run(
        *ztctl_conf, "device", "posture", fp).stdout

    time.sleep(3.2)

    assert gw.get("/app", cert=cert).status == 403
    assert "state                stale" in run(
        *ztctl_conf, "device", "posture", fp).stdout
    assert "posture is stale" in gw.trustd_log()
    # a new report makes it fresh again
    assert post(gw, GOOD, cert=cert)[0] == 204
    assert gw.get("/app", cert=cert).status == 200


# --- the remediation tier -------------------------------------------------------

def test_a_quarantined_device_reaches_only_the_remediation_routes(gw, alice):
    cert, fp = alice
    post(gw, GOOD, cert=cert)
    assert gw.get("/app", cert=cert).status == 200

    gw.ztctl("device", "quarantine", fp, "--reason", "malware alert")

    assert gw.get("/app", cert=cert).status == 403
    assert gw.get("/remediation/howto", cert=cert).status == 200
    assert gw.get("/remediation", cert=cert).status == 200


def test_a_non_compliant_device_reaches_only_the_remediation_routes(
        gw, alice):
    cert, _ = alice
    post(gw, dict(GOOD, disk_encrypted=False), cert=cert)

    assert gw.get("/app", cert=cert).status == 403
    assert gw.get("/remediation/disk", cert=cert).status == 200

    # once fixed, everything again
    post(gw, GOOD, cert=cert)
    assert gw.get("/app", cert=cert).status == 200


def test_an_unknown_device_does_not_reach_the_remediation_routes(gw):
    cert = gw.issue_device("stranger")

    assert gw.get("/remediation/howto", cert=cert).status == 403
    assert gw.get("/remediation/howto").status == 403


# --- staff: by hand, MDM import, reassign ------------------------------------

def test_staff_record_posture_by_hand(gw, alice):
    cert, fp = alice

    gw.ztctl("device", "posture-set", fp, "--os", "debian", "--os-version",
             "12", "--patch-date", "2024-11-20", "--disk-encrypted", "yes",
             "--firewall", "yes")

    out = posture(gw, fp)
    assert "source               staff:pytest" in out
    assert "patch date           2024-11-20" in out
    assert "screen lock          unreported" in out
    assert gw.get("/app", cert=cert).status == 200

    bad = gw.ztctl("device", "posture-set", fp, "--firewall", "maybe",
                   check=False)
    assert bad.returncode == 2 and "--firewall" in bad.stderr


CSV_HEADER = ("device,os,os_version,patch_date,disk_encrypted,firewall,"
              "screen_lock,endpoint_protection\n")


def write(gw, name, text):
    path = os.path.join(gw.dir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_an_mdm_csv_import_with_one_bad_row_imports_nothing_and_names_it(
        gw, alice, bob):
    (_, a_fp), (_, b_fp) = alice, bob
    path = write(gw, "mdm.csv", CSV_HEADER
                 + "%s,debian,12,2024-11-20,yes,yes,yes,no\n" % a_fp
                 + "%s,debian,12,2024-11-20,maybe,yes,yes,no\n" % b_fp)

    r = gw.ztctl("device", "posture-import", path, check=False)

    assert r.returncode == 1
    assert "line 3" in r.stderr and '"disk_encrypted"' in r.stderr
    assert "nothing imported" in r.stderr
    assert "never reported" in posture(gw, a_fp)
    assert "never reported" in posture(gw, b_fp)


def test_an_mdm_csv_import_naming_an_unknown_device_imports_nothing(
        gw, alice):
    _, a_fp = alice
    path = write(gw, "mdm.csv", CSV_HEADER
                 + "%s,debian,12,,yes,yes,,\n" % a_fp
                 + "%s,debian,12,,yes,yes,,\n" % ("ab" * 32))

    r = gw.ztctl("device", "posture-import", path, check=False)

    assert r.returncode == 1
    assert "line 3" in r.stderr and '"device"' in r.stderr
    assert "never reported" in posture(gw, a_fp)


def test_an_mdm_json_import_with_one_bad_row_imports_nothing_and_names_it(
        gw, alice, bob):
    (_, a_fp), (_, b_fp) = alice, bob
    rows = [
        {"device": a_fp, "os": "debian", "os_version": "12",
         "patch_date": "2024-11-20", "disk_encrypted": True,
         "firewall": True, "screen_lock": True,
         "endpoint_protection": False},
        {"device": b_fp, "os": "debian", "patch_date": "2024-02-30",
         "firewall": True},
    ]
    path = write(gw, "mdm.json", json.dumps(rows))

    r = gw.ztctl("device", "posture-import", path, check=False)

    assert r.returncode == 1
    assert "[1]" in r.stderr and '"patch_date"' in r.stderr
    assert "never reported" in posture(gw, a_fp)
    assert "never reported" in posture(gw, b_fp)


def test_a_good_mdm_import_records_every_row(gw, alice, bob):
    (a_cert, a_fp), (_, b_fp) = alice, bob
    b_id = [l.split()[-1] for l in posture(gw, b_fp).splitlines()
            if l.startswith("device")][0]
    path = write(gw, "mdm.csv", "\ufeff" + CSV_HEADER
                 + '%s,"debian",12,2024-11-20,yes,yes,yes,no\r\n' % a_fp
                 + "%s,windows,11,2024-11-21,no,yes,yes,yes\r\n" % b_id)

    r = gw.ztctl("device", "posture-import", path)

    assert "2 devices" in r.stdout
    assert "source               mdm:pytest" in posture(gw, a_fp)
    assert "windows" in posture(gw, b_fp)
    assert gw.get("/app", cert=a_cert).status == 200


def test_a_device_is_reassigned_to_another_owner_and_it_is_audited(
        gw, alice):
    cert, fp = alice

    r = gw.ztctl("device", "reassign", fp, "--owner", "carol")

    assert "alice -> carol" in r.stdout
    assert "owner        carol" in gw.ztctl("device", "show", fp).stdout
    audit = gw.ztctl("audit", "tail").stdout
    assert "device.reassign" in audit and "alice -> carol" in audit
    assert gw.ztctl("device", "reassign", fp, check=False,
                    ).returncode == 2


# --- the reference agent ------------------------------------------------------

def test_the_agent_prints_a_valid_report_with_dry_run():
    r = run("sh", AGENT, "--dry-run")

    report = json.loads(r.stdout)
    assert set(report) <= set(GOOD)
    assert report["reported_at"] > 0
    for flag in ("disk_encrypted", "firewall", "screen_lock",
                 "endpoint_protection"):
        assert report[flag] in (True, False)


def test_the_agent_reports_once_to_the_gateway(gw, alice):
    (crt, key), fp = alice

    r = run("sh", AGENT, "--once", "--gateway", "localhost:%d" % gw.port,
            "--cert", crt, "--key", key, "--cacert",
            os.path.join(gw.ca, "ca.crt"))

    assert "posture reported" in r.stdout
    out = posture(gw, fp)
    assert "source               agent" in out
    assert "never reported" not in out


def test_the_agent_says_when_the_gateway_refuses(gw):
    crt, key = gw.issue_device("stranger")

    r = run("sh", AGENT, "--once", "--gateway", "localhost:%d" % gw.port,
            "--cert", crt, "--key", key, "--cacert",
            os.path.join(gw.ca, "ca.crt"), check=False)

    assert r.returncode == 1 and "HTTP 403" in r.stderr
