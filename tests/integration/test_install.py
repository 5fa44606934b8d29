"""make install / make uninstall (install.mk), the systemd unit and the
installed module in a real nginx.

Every test installs into its own DESTDIR with PREFIX=/usr, as a Debian
package would.  It installs the normal build tree (build/), whatever
ZT_BIN_DIR says: an installed gateway never runs the sanitizer build, and
the nginx module is only built there.  The installed programs are run
from DESTDIR, never from the build tree.
"""

import json
import os
import re
import shutil
import stat
import subprocess

import pytest

from conftest import NGINX, ROOT, run

MAKE = shutil.which("make") or "/usr/bin/make"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")

PROGRAMS = ["usr/sbin/trustd", "usr/sbin/ztctl", "usr/sbin/ztconsole",
            "usr/bin/ztca",
            "usr/bin/ztpolicy", "usr/bin/ztgate-posture-agent"]
CONFIGS = ["etc/ztgate/trustd.conf", "etc/ztgate/nginx-ztgate.conf",
           "etc/ztgate/console.conf",
           "etc/ztgate/policy/00-common.policy",
           "etc/ztgate/policy/hr.policy",
           "etc/ztgate/policy-tests/hr.cases"]
DATA = ["usr/lib/nginx/modules/ngx_http_zt_module.so",
        "usr/share/nginx/modules-available/mod-http-zt.conf",
        "usr/lib/systemd/system/trustd.service",
        "usr/lib/systemd/system/ztconsole.service",
        "usr/lib/sysusers.d/ztgate.conf",
        "usr/lib/tmpfiles.d/ztgate.conf",
        "usr/share/bash-completion/completions/ztctl",
        "usr/share/man/man8/trustd.8",
        "usr/share/man/man8/ztctl.8",
        "usr/share/man/man1/ztca.1",
        "usr/share/man/man5/ztgate-policy.5",
        "usr/share/doc/ztgate/operations.md",
        "usr/share/doc/ztgate/policy.md"]
MODULE_LINK = "etc/nginx/modules-enabled/50-mod-http-zt.conf"


def make(*args):
    """Run make in the source tree, outside any make that runs pytest
    (its MAKEFLAGS would leak variables such as ZT_BIN_DIR into ours)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES",
                        "SANITIZE", "B")}
    return run(MAKE, "-C", ROOT, "--no-print-directory", *args, env=env)


def install(destdir, *extra):
    return make("install", "DESTDIR=%s" % destdir, "PREFIX=/usr", *extra)


def uninstall(destdir, *extra):
    return make("uninstall", "DESTDIR=%s" % destdir, "PREFIX=/usr", *extra)


def files_under(root):
    """Every file and symlink under root, as paths relative to it."""
    out = set()
    for d, _, names in os.walk(root):
        for n in names:
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def destdir(tmp_path):
    d = tmp_path / "root"
    install(d)
    return str(d)


def test_install_puts_every_file_in_place_with_sane_modes(destdir):
    for f in PROGRAMS:
        assert mode(os.path.join(destdir, f)) == 0o755, f
    for f in CONFIGS:
        assert mode(os.path.join(destdir, f)) in (0o644, 0o640), f
    for f in DATA:
        assert mode(os.path.join(destdir, f)) == 0o644, f

    # exactly these, and no .dist copies on a first install
    assert files_under(destdir) >= set(PROGRAMS + CONFIGS + DATA
                                       + [MODULE_LINK])
    assert not [f for f in files_under(destdir) if f.endswith(".dist")]

    for d, dirs, names in os.walk(destdir):
        for n in dirs + names:
            p = os.path.join(d, n)
            if os.path.islink(p):
                continue
            assert not mode(p) & (stat.S_IWOTH | stat.S_IWGRP), \
                "%s is writable by others (mode %04o)" % (p, mode(p))


def test_installed_files_are_the_built_ones(destdir):
    for built, inst in (("build/trustd", "usr/sbin/trustd"),
                        ("build/ngx_http_zt_module.so",
                         "usr/lib/nginx/modules/ngx_http_zt_module.so"),
                        ("config/trustd.conf", "etc/ztgate/trustd.conf"),
                        ("docs/ztgate-policy.5",
                         "usr/share/man/man5/ztgate-policy.5")):
        with open(os.path.join(ROOT, built), "rb") as a, \
                open(os.path.join(destdir, inst), "rb") as b:
            assert a.read() == b.read(), inst


def test_nginx_module_is_enabled_the_debian_way(destdir, tmp_path):
    snippet = open(os.path.join(
        destdir, "usr/share/nginx/modules-available/mod-http-zt.conf")).read()
    assert snippet.strip() == \
        "load_module /usr/lib/nginx/modules/ngx_http_zt_module.so;"
    link = os.path.join(destdir, MODULE_LINK)
    assert os.readlink(link) == \
        "/usr/share/nginx/modules-available/mod-http-zt.conf"

    other = tmp_path / "noenable"
    install(other, "NGX_ENABLE_MODULE=no")
    assert not os.path.lexists(os.path.join(str(other), MODULE_LINK))
    assert os.path.exists(os.path.join(
        str(other), "usr/share/nginx/modules-available/mod-http-zt.conf"))


def test_installed_programs_run(destdir):
    p = run(os.path.join(destdir, "usr/sbin/ztctl"), "--help")
    assert "usage: ztctl" in p.stdout + p.stderr
    p = run(os.path.join(destdir, "usr/bin/ztca"), "--help", check=False)
    assert "usage: ztca" in p.stdout + p.stderr
    p = run(os.path.join(destdir, "usr/bin/ztgate-posture-agent"),
            "--dry-run")
    assert "reported_at" in json.loads(p.stdout)


def test_installed_trustd_conf_passes_trustd_check(destdir, tmp_path):
    trustd = os.path.join(destdir, "usr/sbin/trustd")
    conf = os.path.join(destdir, "etc/ztgate/trustd.conf")
    p = run(trustd, "-n", "-c", conf)
    assert "configuration OK" in p.stdout

    # the installed example policy, enabled as the comment says, loads
    # and passes its own cases with the installed ztpolicy
    text = open(conf).read()
    assert "#policy /etc/ztgate/policy\n" in text
    policy = os.path.join(destdir, "etc/ztgate/policy")
    enabled = tmp_path / "trustd-policy.conf"
    enabled.write_text(text.replace("#policy /etc/ztgate/policy",
                                    "policy " + policy))
    p = run(trustd, "-n", "-c", str(enabled))
    assert "configuration OK" in p.stdout
    p = run(os.path.join(destdir, "usr/bin/ztpolicy"), "test", policy,
            os.path.join(destdir, "etc/ztgate/policy-tests"))
    assert " 0 failed" in p.stdout


def test_reinstall_keeps_an_edited_config_and_uninstall_keeps_it_too(
        destdir):
    conf = os.path.join(destdir, "etc/ztgate/trustd.conf")
    shipped = open(os.path.join(ROOT, "config/trustd.conf")).read()
    edited = shipped.replace("log_level info", "log_level debug")
    assert edited != shipped
    with open(conf, "w") as f:
        f.write(edited)
    os.chmod(conf, 0o640)

    p = install(destdir)
    assert "kept %s (edited)" % conf in p.stdout
    assert open(conf).read() == edited
    assert mode(conf) == 0o640
    # the shipped version lands next to it, to compare; the other
    # configuration files were not edited and stay as they are
    assert open(conf + ".dist").read() == shipped
    assert not os.path.exists(os.path.join(
        destdir, "etc/ztgate/nginx-ztgate.conf.dist"))

    p = uninstall(destdir)
    assert "kept %s (edited)" % conf in p.stdout
    assert files_under(destdir) == {"etc/ztgate/trustd.conf"}
    assert open(conf).read() == edited


def test_uninstall_removes_everything_install_installed(destdir):
    uninstall(destdir)
    assert files_under(destdir) == set()
    assert not os.path.exists(os.path.join(destdir, "etc/ztgate"))


def test_installed_module_loads_in_nginx(destdir, tmp_path):
    """nginx -t with the installed module and the installed site example,
    its /etc/ztgate paths pointed at a CA made with the installed ztca."""
    ztca = os.path.join(destdir, "usr/bin/ztca")
    etc = tmp_path / "etc-ztgate"
    ca = etc / "ca"
    etc.mkdir()
    run(ztca, "init", "-d", str(ca), "--cn", "install test CA")
    run(ztca, "server", "-d", str(ca), "--key", str(etc / "server.key"),
        "--cert", str(etc / "server.crt"), "--dns", "app.agency.example")
    run(ztca, "crl", "-d", str(ca), "--out", str(ca / "crl.pem"))

    site = open(os.path.join(destdir, "etc/ztgate/nginx-ztgate.conf")).read()
    assert "zt_trustd unix:/run/ztgate/trustd.sock;" in site
    site = site.replace("/etc/ztgate/", str(etc) + "/")
    (tmp_path / "site.conf").write_text(site)

    module = os.path.join(destdir,
                          "usr/lib/nginx/modules/ngx_http_zt_module.so")
    temp = "".join("%s_temp_path %s/%s;\n" % (t, tmp_path, t)
                   for t in ("client_body", "proxy", "fastcgi", "uwsgi",
                             "scgi"))
    conf = tmp_path / "nginx.conf"
    conf.write_text("""
load_module %s;
error_log %s/error.log info;
pid %s/nginx.pid;
events { worker_connections 64; }
http {
    %s
    include %s/site.conf;
}
""" % (module, tmp_path, tmp_path, temp, tmp_path))
    p = run(NGINX, "-t", "-p", str(tmp_path), "-c", str(conf),
            "-e", str(tmp_path / "error.log"))
    assert "test is successful" in p.stderr
    assert "[emerg]" not in p.stderr and "[alert]" not in p.stderr


def test_unit_matches_the_installed_configuration(destdir):
    unit = open(os.path.join(destdir,
                             "usr/lib/systemd/system/trustd.service")).read()
    conf = open(os.path.join(destdir, "etc/ztgate/trustd.conf")).read()
    keys = dict(re.findall(r"^(\w+)\s+(\S+)", conf, re.M))
    tmpfiles = open(os.path.join(destdir,
                                 "usr/lib/tmpfiles.d/ztgate.conf")).read()
    sysusers = open(os.path.join(destdir,
                                 "usr/lib/sysusers.d/ztgate.conf")).read()

    assert not re.search(r"@[A-Z_]+@", unit), "unsubstituted @VAR@"
    assert "\nExecStart=/usr/sbin/trustd -f -c /etc/ztgate/trustd.conf\n" \
        in unit
    assert "\nExecStartPre=/usr/sbin/trustd -n -c /etc/ztgate/trustd.conf\n" \
        in unit
    assert "\nExecReload=/bin/kill -HUP $MAINPID\n" in unit
    assert "\nUser=ztgate\n" in unit and "\nGroup=ztgate\n" in unit

    # every socket and the pid file in the runtime directory, the store
    # and the keys in the state directory: the only writable places
    assert "\nRuntimeDirectory=ztgate\n" in unit
    assert "\nStateDirectory=ztgate\n" in unit
    assert "\nReadWritePaths=/var/lib/ztgate /run/ztgate\n" in unit
    for k in ("listen", "portal_listen", "admin_listen", "pid_file"):
        assert keys[k].startswith("/run/ztgate/"), k
    for k in ("store", "identity_keys"):
        assert keys[k].startswith("/var/lib/ztgate/"), k

    # nginx's workers (peer_user) reach the 0660 sockets through the
    # group ztgate on the 0750 runtime directory
    assert keys["peer_user"] == "www-data"
    assert keys["listen_mode"] == "0660"
    assert "\nRuntimeDirectoryMode=0750\n" in unit
    assert re.search(r"^m\s+www-data\s+ztgate\s*$", sysusers, re.M)
    assert re.search(r"^u\s+ztgate\s", sysusers, re.M)
    assert re.search(r"^d\s+/run/ztgate\s+0750\s+ztgate\s+ztgate\b",
                     tmpfiles, re.M)
    assert re.search(r"^d\s+/var/lib/ztgate\s+0700\s+ztgate\s+ztgate\b",
                     tmpfiles, re.M)

    for line in ("NoNewPrivileges=yes", "ProtectSystem=strict",
                 "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes",
                 "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                 "CapabilityBoundingSet=", "MemoryDenyWriteExecute=yes",
                 "SystemCallFilter=@system-service", "LockPersonality=yes"):
        assert "\n%s\n" % line in unit, line


@pytest.mark.skipif(SYSTEMD_ANALYZE is None,
                    reason="systemd-analyze is not installed (package "
                           "systemd): the unit file cannot be verified here")
@pytest.mark.parametrize("name", ["trustd.service", "ztconsole.service"])
def test_installed_unit_passes_systemd_analyze(destdir, tmp_path, name):
    # verify checks that ExecStart's binary exists on this system: point
    # the copy under test at the DESTDIR binaries, nothing else changed.
    # Documentation=man: pages are looked up in the DESTDIR's man tree.
    unit = open(os.path.join(destdir, "usr/lib/systemd/system",
                             name)).read()
    (tmp_path / name).write_text(
        unit.replace("=/usr/sbin/", "=%s/usr/sbin/" % destdir)
        .replace("file:/usr/share/", "file:%s/usr/share/" % destdir))
    env = dict(os.environ, MANPATH=os.path.join(destdir, "usr/share/man"))
    p = subprocess.run([SYSTEMD_ANALYZE, "verify", str(tmp_path / name)],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0 and p.stdout + p.stderr == "", \
        "systemd-analyze verify:\n" + p.stdout + p.stderr

    # and the hardening keeps its "OK" exposure level (1.2 of 10 today)
    p = subprocess.run([SYSTEMD_ANALYZE, "security", "--offline=yes",
                        "--threshold=20", str(tmp_path / name)],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
