"""ztctl, complete and consistent (issue 9), against a real trustd and a
real store: --json on every listing and showing command with the keys
ztctl(8) documents and no secret in them, "ztctl status" with trustd up
and down, commands that need trustd refusing clearly without it, --help on
every group and command, the exit statuses, and the bash completion."""

import base64
import json
import os
import re
import shlex
import signal
import subprocess
import time

import pytest

from conftest import ROOT, ZTCTL, run
from test_identity import PASSWORD, POLICY, enroll_user, signed_in

COMPLETION = os.path.join(ROOT, "dist", "bash-completion", "ztctl")
MAN = os.path.join(ROOT, "docs", "ztctl.8")

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")

# the keys, in their order, that ztctl(8) "JSON OUTPUT" documents
DEVICE_KEYS = ["fingerprint", "id", "owner", "name", "platform", "status",
               "enrolled_at", "enrolled_by", "expires_at", "expired",
               "updated_at"]
POSTURE_KEYS = ["device", "fingerprint", "reported", "os", "os_version",
                "patch_date", "disk_encrypted", "firewall", "screen_lock",
                "endpoint_protection", "reported_at", "received_at",
                "source", "stale", "age_seconds", "max_age_seconds"]
USER_KEYS = ["name", "display", "groups", "password_set", "totp",
             "totp_algo", "totp_digits", "failures", "last_failure",
             "locked_until", "disabled", "status", "created_at",
             "created_by", "updated_at"]
SESSION_KEYS = ["sid", "user", "device_fp", "created_at", "mfa_at",
                "last_seen", "expires_at", "expired", "revoked",
                "revoked_at", "source"]
BLOCKLIST_KEYS = ["feed", "entry", "expires_at", "added_at", "added_by",
                  "reason"]
POLICY_STATUS_KEYS = ["pid", "policy", "connections"]
STATUS_KEYS = ["store", "devices", "users", "sessions", "journal", "trustd"]
STATUS_STORE_KEYS = ["path", "size_bytes", "map_size_bytes",
                     "map_used_percent"]
STATUS_TRUSTD_KEYS = ["configured", "reachable", "socket", "pid", "policy",
                      "connections", "stats", "journal", "cluster"]
# passed through from trustd's admin replies: these at least
TRUSTD_STATS_KEYS = ["decisions", "allow", "deny", "login", "step_up",
                     "p50_us", "p99_us", "max_us", "seconds", "connections"]
TRUSTD_JOURNAL_KEYS = ["queued", "folded", "written", "dropped", "failures",
                       "purged", "pending", "failing"]


def ztctl_c(gw, *args, check=True):
    """ztctl through trustd's configuration, as staff run it."""
    return run(ZTCTL, "-c", gw.trustd_conf, "--actor", "pytest", *args,
               check=check)


def as_json(p):
    return json.loads(p.stdout)


def ztctl_commands():
    """(group, command) for every command "ztctl --help" lists; command
    None for a group that is its own command ("status")."""
    out = run(ZTCTL, "--help").stdout
    listing = out.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    cmds = []
    for line in listing.splitlines():
        m = re.match(r"  ([a-z]+)(?: ([a-z-]+|--[a-z]+))?(?: |$)", line)
        if m:
            cmds.append((m.group(1), m.group(2)))
    return cmds


def argv_of(group, cmd):
    return [group] if cmd is None else [group, cmd]


@pytest.fixture
def zgw(make_gateway):
    """A gateway with a user (password and TOTP), her enrolled laptop
    with a posture, a second device that never reported one, a staff
    blocklist entry and a device-bound session."""
    gw = make_gateway(policy=POLICY, identity=True)
    gw.secret = enroll_user(gw, "alice", groups=("staff",))
    gw.laptop = gw.issue_device("alice-laptop")
    gw.fp = gw.enroll(gw.laptop[0])
    gw.ztctl("device", "posture-set", gw.fp, "--os", "debian",
             "--os-version", "12.8", "--patch-date", "2026-11-01",
             "--disk-encrypted", "yes", "--firewall", "no")
    phone = gw.issue_device("alice-phone")
    gw.phone_fp = gw.enroll(phone[0], name="phone")
    gw.ztctl("device", "quarantine", gw.phone_fp)
    gw.ztctl("blocklist", "add", "198.51.100.0/24", "--feed", "staff",
             "--reason", "scanner")
    gw.browser = signed_in(gw, cert=gw.laptop)
    return gw


# --- JSON output -------------------------------------------------------------

def test_device_list_and_show_print_the_documented_objects(zgw):
    devices = as_json(zgw.ztctl("device", "list", "--json"))

    assert isinstance(devices, list) and len(devices) == 2
    for d in devices:
        assert list(d) == DEVICE_KEYS
    laptop = [d for d in devices if d["fingerprint"] == zgw.fp][0]
    assert laptop["owner"] == "alice" and laptop["name"] == "laptop"
    assert laptop["status"] == "active" and laptop["expired"] is False
    assert laptop["id"].startswith("urn:ztgate:device:")
    assert TIME.fullmatch(laptop["enrolled_at"])
    assert laptop["enrolled_by"] == "pytest"

    # show prints the same object as list, by fingerprint prefix or id
    assert as_json(zgw.ztctl("device", "show", zgw.fp[:12], "--json")) \
        == laptop
    assert as_json(zgw.ztctl("device", "show", laptop["id"], "--json")) \
        == laptop
    phone = as_json(zgw.ztctl("device", "show", zgw.phone_fp, "--json"))
    assert phone["status"] == "quarantined" and phone["name"] == "phone"


def test_device_posture_prints_flags_as_booleans_and_null(zgw):
    p = as_json(zgw.ztctl("device", "posture", zgw.fp, "--json"))

    assert list(p) == POSTURE_KEYS
    assert p["reported"] is True and p["stale"] is False
    assert (p["os"], p["os_version"], p["patch_date"]) == \
        ("debian", "12.8", "2026-11-01")
    assert p["disk_encrypted"] is True and p["firewall"] is False
    assert p["screen_lock"] is None and p["endpoint_protection"] is None
    assert p["source"] == "staff:pytest"
    assert TIME.fullmatch(p["received_at"])
    assert TIME.fullmatch(p["reported_at"])
    assert p["max_age_seconds"] == 24 * 3600 and 0 <= p["age_seconds"] < 60

    never = as_json(zgw.ztctl("device", "posture", zgw.phone_fp,
                              "--max-age", "1h", "--json"))
    assert list(never) == POSTURE_KEYS
    assert never["reported"] is False and never["stale"] is True
    assert never["os"] is None and never["received_at"] is None
    assert never["max_age_seconds"] == 3600


def test_user_list_and_show_carry_no_secret(zgw):
    users = as_json(zgw.ztctl("user", "list", "--json"))
    alice = as_json(zgw.ztctl("user", "show", "alice", "--json"))

    assert users == [alice]
    assert list(alice) == USER_KEYS
    assert alice["groups"] == ["staff"] and alice["display"] == "Alice"
    assert alice["password_set"] is True
    assert (alice["totp"], alice["totp_algo"], alice["totp_digits"]) == \
        ("active", "sha1", 6)
    assert alice["status"] == "active" and alice["disabled"] is False
    assert alice["locked_until"] is None and alice["failures"] == 0

    # neither the password, its hash, nor the TOTP secret in any form
    text = zgw.ztctl("user", "show", "alice", "--json").stdout + \
        zgw.ztctl("user", "list", "--json").stdout
    b32 = base64.b32encode(zgw.secret).decode().rstrip("=")
    for secret in ("$scrypt$", PASSWORD, b32, b32.lower(),
                   zgw.secret.hex()):
        assert secret not in text


def test_session_list_names_sessions_by_their_audit_prefix(zgw):
    sessions = as_json(zgw.ztctl("session", "list", "--json"))
    mine = as_json(zgw.ztctl("session", "list", "--user", "alice",
                             "--json"))

    assert len(sessions) == 1 and sessions == mine
    s = sessions[0]
    assert list(s) == SESSION_KEYS
    assert re.fullmatch(r"[0-9a-f]{12}", s["sid"])
    assert s["user"] == "alice" and s["device_fp"] == zgw.fp
    assert s["revoked"] is False and s["revoked_at"] is None
    assert s["expired"] is False and TIME.fullmatch(s["expires_at"])
    assert s["source"] == "127.0.0.1"

    # the full session id (half of what a token needs) is not printed
    status, _, body = zgw.browser.request("GET", "/private/x")
    assert status == 200
    sid = [v for k, v in json.loads(body)["headers"]
           if k.lower() == "x-zt-session"][0]
    assert sid[:12] == s["sid"]
    assert sid not in zgw.ztctl("session", "list", "--json").stdout

    # the prefix is what "session revoke" takes
    zgw.ztctl("session", "revoke", s["sid"])
    s = as_json(zgw.ztctl("session", "list", "--json"))[0]
    assert s["revoked"] is True and TIME.fullmatch(s["revoked_at"])

    assert as_json(zgw.ztctl("session", "list", "--user", "bob",
                             "--json")) == []


def test_blocklist_list_prints_the_staff_entries(zgw):
    entries = as_json(zgw.ztctl("blocklist", "list", "--json"))

    assert len(entries) == 1
    e = entries[0]
    assert list(e) == BLOCKLIST_KEYS
    assert (e["feed"], e["entry"], e["reason"], e["added_by"]) == \
        ("staff", "198.51.100.0/24", "scanner", "pytest")
    assert e["expires_at"] is None and TIME.fullmatch(e["added_at"])


def test_policy_status_prints_the_running_trustds_pid_and_policy(zgw):
    text = ztctl_c(zgw, "policy", "status").stdout
    st = as_json(ztctl_c(zgw, "policy", "status", "--json"))

    assert list(st) == POLICY_STATUS_KEYS
    assert st["pid"] == zgw.procs["trustd"].pid
    assert isinstance(st["policy"], str) and st["policy"] in text
    assert isinstance(st["connections"], int)


def test_audit_commands_keep_their_json_lines_and_show_prints_one(zgw):
    lines = zgw.ztctl("audit", "tail", "-n", "5", "--json").stdout
    records = [json.loads(l) for l in lines.splitlines()]
    assert len(records) == 5

    last = records[-1]
    shown = as_json(zgw.ztctl("audit", "show", str(last["seq"]), "--json"))
    assert shown == last

    found = zgw.ztctl("audit", "search", "--action", "blocklist.",
                      "--json").stdout.splitlines()
    assert [json.loads(l)["action"] for l in found] == ["blocklist.add"]


def test_json_keys_are_the_documented_ones():
    man = open(MAN).read().replace("\\-", "-").replace("\\(em", "")
    for keys in (DEVICE_KEYS, POSTURE_KEYS, USER_KEYS, SESSION_KEYS,
                 BLOCKLIST_KEYS, POLICY_STATUS_KEYS, STATUS_KEYS,
                 STATUS_STORE_KEYS, STATUS_TRUSTD_KEYS):
        for k in keys:
            assert re.search(r"\b%s\b" % re.escape(k), man), k


# --- ztctl status ------------------------------------------------------------

def test_status_shows_the_store_and_the_running_trustd(zgw):
    assert zgw.browser.request("GET", "/private/x")[0] == 200

    p = ztctl_c(zgw, "status")
    st = as_json(ztctl_c(zgw, "status", "--json"))

    assert list(st) == STATUS_KEYS
    assert list(st["store"]) == STATUS_STORE_KEYS
    assert st["store"]["path"] == zgw.store
    assert st["store"]["map_size_bytes"] == 64 * 1024 * 1024
    assert 0 < st["store"]["size_bytes"] <= st["store"]["map_size_bytes"]
    assert st["devices"] == {"total": 2, "active": 1, "quarantined": 1,
                             "revoked": 0}
    assert st["users"] == {"total": 1, "disabled": 0, "locked": 0}
    assert st["sessions"] == {"active": 1, "total": 1}
    last = json.loads(zgw.ztctl("audit", "tail", "-n", "1",
                                "--json").stdout)
    assert st["journal"]["last_seq"] >= last["seq"]

    t = st["trustd"]
    assert list(t) == STATUS_TRUSTD_KEYS
    assert t["configured"] is True and t["reachable"] is True
    assert t["socket"] == zgw.admin_sock
    assert t["pid"] == zgw.procs["trustd"].pid
    assert set(TRUSTD_STATS_KEYS) <= set(t["stats"])
    assert t["stats"]["decisions"] >= 1
    assert set(TRUSTD_JOURNAL_KEYS) <= set(t["journal"])
    assert t["cluster"] == {"mode": "off"}

    assert p.stdout.startswith("store: %s\n" % zgw.store)
    assert "devices: 2 (1 active, 1 quarantined, 0 revoked)" in p.stdout
    assert "users: 1 (0 disabled, 0 locked)" in p.stdout
    assert "sessions: 1 active" in p.stdout
    assert "trustd: running, pid %d" % t["pid"] in p.stdout
    assert "trustd stats: decisions " in p.stdout
    assert "trustd journal: queued " in p.stdout
    assert "trustd cluster: mode off" in p.stdout


def test_status_without_trustd_still_shows_the_store_and_exits_1(zgw):
    zgw.kill_trustd(signal.SIGTERM)

    p = ztctl_c(zgw, "status", check=False)
    assert p.returncode == 1
    assert "devices: 2 (1 active, 1 quarantined, 0 revoked)" in p.stdout
    m = re.search(r"^trustd: not reachable \((.+)\)$", p.stdout, re.M)
    assert m and zgw.admin_sock in m.group(1), p.stdout

    j = ztctl_c(zgw, "status", "--json", check=False)
    assert j.returncode == 1
    st = json.loads(j.stdout)
    assert st["devices"]["total"] == 2
    assert st["trustd"]["reachable"] is False
    assert st["trustd"]["configured"] is True
    assert zgw.admin_sock in st["trustd"]["error"]


def test_status_of_a_bare_store_does_not_ask_trustd(zgw):
    p = zgw.ztctl("status")

    assert "trustd: not asked (" in p.stdout
    st = as_json(zgw.ztctl("status", "--json"))
    assert st["trustd"]["configured"] is False
    assert st["trustd"]["reachable"] is False
    assert st["users"]["total"] == 1


def test_commands_that_need_trustd_refuse_clearly_without_it(zgw):
    zgw.kill_trustd(signal.SIGTERM)

    for args in (["policy", "reload"], ["policy", "status"],
                 ["policy", "status", "--json"],
                 ["explain", "--request", "GET https://localhost/x",
                  "--user", "alice", "--device", zgw.fp]):
        p = ztctl_c(zgw, *args, check=False)
        assert p.returncode == 1, args
        assert "trustd is not reachable" in p.stderr, args
        assert zgw.admin_sock in p.stderr, args
        assert p.stdout == "", args

    # and with a bare store there is no socket to ask: a usage error
    p = zgw.ztctl("policy", "reload", check=False)
    assert p.returncode == 2 and "-c" in p.stderr


# --- help and exit statuses --------------------------------------------------

def test_usage_lists_every_group_and_the_exit_statuses():
    p = run(ZTCTL, "--help")

    assert p.stdout.startswith("usage: ztctl")
    assert "exit status: 0 ok, 1 failed, 2 usage error, 3 not found" \
        in p.stdout
    groups = {g for g, _ in ztctl_commands()}
    assert groups == {"status", "explain", "blocklist", "device", "user",
                      "session", "audit", "policy", "keys", "store",
                      "cluster"}


def test_every_group_and_command_has_help(tmp_path):
    store = str(tmp_path / "store")
    cmds = ztctl_commands()
    assert len(cmds) > 30

    for group in {g for g, c in cmds if c is not None}:
        p = run(ZTCTL, "-s", store, group, "--help")
        assert p.stdout.startswith("ztctl %s: " % group), group
        for g, c in cmds:
            if g == group:
                assert "  ztctl %s %s" % (g, c) in p.stdout, (g, c)

    for g, c in cmds:
        p = run(ZTCTL, "-s", store, *argv_of(g, c), "--help", check=False)
        assert p.returncode == 0, (g, c, p.stderr)
        synopsis = "usage: ztctl %s" % " ".join(argv_of(g, c))
        assert p.stdout.startswith(synopsis), (g, c, p.stdout)
        assert p.stderr == "", (g, c)

    # --help did not create or open a store
    assert not os.path.exists(store)


def test_unknown_options_and_commands_are_usage_errors(tmp_path):
    store = str(tmp_path / "store")

    for g, c in ztctl_commands():
        p = run(ZTCTL, "-s", store, *argv_of(g, c), "--no-such-option",
                check=False)
        assert p.returncode == 2, (g, c, p.stdout, p.stderr)
        assert "usage: ztctl" in p.stderr, (g, c)

    for args in (["--no-such-option"], ["no-such-group"],
                 ["device", "no-such-command"], ["device"],
                 ["device", "list", "extra"], ["status", "extra"]):
        p = run(ZTCTL, "-s", store, *args, check=False)
        assert p.returncode == 2, args


def test_what_is_not_there_is_exit_status_3(zgw):
    for args in (["device", "show", "0123456789abcdef"],
                 ["device", "show", "urn:ztgate:device:nobody", "--json"],
                 ["device", "posture", "0123456789abcdef", "--json"],
                 ["device", "revoke", "0123456789abcdef"],
                 ["user", "show", "nobody", "--json"],
                 ["user", "disable", "nobody"],
                 ["session", "revoke", "0123456789abcdef"],
                 ["blocklist", "remove", "192.0.2.0/24", "--feed", "staff"],
                 ["audit", "show", "999999"]):
        p = zgw.ztctl(*args, check=False)
        assert p.returncode == 3, (args, p.stdout, p.stderr)
        assert p.stdout == "", args


# --- bash completion ---------------------------------------------------------

def complete(words, cword=None):
    """COMPREPLY of the installed completion function for words, the
    cursor in word cword (default: the last)."""
    if cword is None:
        cword = len(words) - 1
    script = ('source %s\nCOMP_WORDS=(%s)\nCOMP_CWORD=%d\n_ztctl\n'
              'printf "%%s\\n" "${COMPREPLY[@]}"\n'
              % (shlex.quote(COMPLETION),
                 " ".join(shlex.quote(w) for w in words), cword))
    env = dict(os.environ,
               PATH=os.path.dirname(ZTCTL) + os.pathsep + os.environ["PATH"])
    p = subprocess.run(["bash", "-c", script], capture_output=True,
                       text=True, env=env, check=True)
    return [w for w in p.stdout.splitlines() if w]


def test_bash_completion_completes_groups_commands_and_options():
    assert complete(["ztctl", "dev"]) == ["device"]
    assert complete(["ztctl", "device", "l"]) == ["list"]
    assert complete(["ztctl", "device", "list", "--j"]) == ["--json"]
    assert complete(["ztctl", "st"]) == ["status", "store"]
    assert complete(["ztctl", "stor"]) == ["store"]
    assert complete(["ztctl", "status", "--"]) == ["--json", "--help"]
    assert complete(["ztctl", "-c", "/etc/ztgate/trustd.conf", "user",
                     "totp-e"]) == ["totp-enroll"]
    assert set(complete(["ztctl", "device", "enroll", "--"])) == \
        {"--cert", "--owner", "--name", "--platform", "--help"}
    assert complete(["ztctl", "explain", "--r"]) == ["--request"]
    assert "--actor" in complete(["ztctl", "-"])
    # an option's value is left to bash's default (file names)
    assert complete(["ztctl", "device", "enroll", "--cert", ""]) == []


def test_completion_offers_every_option_a_command_documents():
    for g, c in ztctl_commands():
        offered = set(complete(["ztctl"] + argv_of(g, c) + ["--"]))
        synopsis = run(ZTCTL, *argv_of(g, c), "--help").stdout
        synopsis = synopsis.split("\n\n", 1)[0]
        documented = set(re.findall(r"--[a-z][a-z-]*", synopsis))
        documented -= {"--decision", "--request"}   # explain's commands
        assert documented <= offered, (g, c, documented - offered)
        assert "--help" in offered, (g, c)


def test_policy_check_test_and_explain_use_the_configured_policy(
        make_gateway, tmp_path):
    from conftest import ZTCTL, run
    gw = make_gateway(policy="""
app "gateway" {
    host "localhost"
    rule "open" { path prefix "/open" allow }
}
""")
    out = run(ZTCTL, "-c", gw.trustd_conf, "policy", "check").stdout
    assert "1 apps, 1 rules, 0 errors" in out

    cases = tmp_path / "gw.cases"
    cases.write_text('case "open is open" {\n    request GET '
                     '"https://localhost/open/x"\n    expect allow\n}\n')
    out = run(ZTCTL, "-c", gw.trustd_conf, "policy", "test",
              str(cases)).stdout
    assert "1 passed, 0 failed" in out
    out = run(ZTCTL, "-c", gw.trustd_conf, "policy", "explain",
              str(cases)).stdout
    assert 'rule "open"' in out

    bad = tmp_path / "bad.policy"
    bad.write_text("app {\n")
    r = run(ZTCTL, "-c", gw.trustd_conf, "policy", "check", "--policy",
            str(bad), check=False)
    assert r.returncode == 1 and "bad.policy:" in r.stderr
