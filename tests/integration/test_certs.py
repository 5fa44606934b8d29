"""Device certificates end to end (issue: PKCS#12 delivery, renewal, expiry,
revocation through the CRL): certificates from ztca, presented to real
nginx, decided by real trustd."""

import datetime
import os
import shutil

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import NGINX, ZTCA, Gateway, run, wait_for

URN = "urn:ztgate:device:"
OPENSSL = shutil.which("openssl")


# --- helpers ------------------------------------------------------------

def ztca(*args, check=True):
    return run(ZTCA, *args, check=check)


def fields(out):
    """The "name: value" lines ztca prints, as a dict."""
    return dict(l.split(": ", 1) for l in out.splitlines() if ": " in l)


def issue_p12(gw, name, *extra):
    """ztca device --p12; returns (p12 path, the printed fields)."""
    p12 = os.path.join(gw.dir, name + ".p12")
    p = ztca("device", "-d", gw.ca, "--p12", p12, "--cn", name, *extra)
    return p12, fields(p.stdout)


def unpack_p12(p12, passphrase, tmp, name):
    """Key and certificate out of a PKCS#12 file into PEM files, as the
    device would install them; returns (cert, key) paths."""
    key, cert, cas = pkcs12.load_key_and_certificates(
        open(p12, "rb").read(), passphrase.encode())
    crt_path = os.path.join(str(tmp), name + ".crt")
    key_path = os.path.join(str(tmp), name + ".key")
    with open(crt_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return crt_path, key_path, cas


def device_id(crt):
    return fields(ztca("show", crt).stdout)["device-id"]


def serial(crt):
    return fields(ztca("show", crt).stdout)["serial"]


def sign_with_ca(gw, name, not_before, not_after):
    """A device certificate signed by the gateway's CA key, built here so
    that its validity can lie in the past; returns (cert, key) paths."""
    ca_key = serialization.load_pem_private_key(
        open(os.path.join(gw.ca, "ca.key"), "rb").read(), None)
    ca_crt = x509.load_pem_x509_certificate(
        open(os.path.join(gw.ca, "ca.crt"), "rb").read())
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                        name)]))
            .issuer_name(ca_crt.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                           critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False,
                                         False, False, False, False),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(URN + name)]),
                critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    crt_path = os.path.join(gw.dir, name + ".crt")
    key_path = os.path.join(gw.dir, name + ".key")
    with open(crt_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return crt_path, key_path


@pytest.fixture
def crl_gateway(make_gateway, monkeypatch):
    """A gateway whose nginx also checks ztca's CRL (ssl_crl), which the
    shared harness does not configure."""
    plain = Gateway.write_nginx_conf

    def write_nginx_conf(self):
        plain(self)
        self.crl = os.path.join(self.dir, "crl.pem")
        ztca("crl", "-d", self.ca, "--out", self.crl)
        conf = open(self.nginx_conf).read()
        anchor = "ssl_verify_client optional;"
        assert anchor in conf
        conf = conf.replace(anchor, "%s\n        ssl_crl %s;"
                            % (anchor, self.crl), 1)
        with open(self.nginx_conf, "w") as f:
            f.write(conf)

    monkeypatch.setattr(Gateway, "write_nginx_conf", write_nginx_conf)
    return make_gateway()


def children(pid):
    """The processes whose parent is pid."""
    kids = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = open("/proc/%s/stat" % d).read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            kids.add(int(d))
    return kids


def reload_nginx(gw):
    """nginx -s reload, and wait until only new workers are left: an old
    one would still answer with the old CRL."""
    master = int(open(os.path.join(gw.dir, "nginx.pid")).read())
    old = children(master)
    run(NGINX, "-p", gw.dir, "-c", gw.nginx_conf,
        "-e", os.path.join(gw.logs, "error.log"), "-s", "reload")
    wait_for(lambda: not children(master) & old
             and len(children(master)) == gw.workers,
             what="the old nginx workers to exit")


# --- PKCS#12 delivery ---------------------------------------------------

def test_a_certificate_delivered_as_pkcs12_and_enrolled_is_allowed(
        gateway, tmp_path):
    p12, out = issue_p12(gateway, "bobs-phone", "--id", "phone-0001")

    passphrase = out["passphrase"]
    assert len(passphrase.replace("-", "")) >= 20
    assert os.stat(p12).st_mode & 0o777 == 0o600
    assert not any(f.endswith(".key") and f.startswith("bobs-phone")
                   for f in os.listdir(gateway.dir))

    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(open(p12, "rb").read(),
                                         b"not-the-passphrase")

    crt, key, cas = unpack_p12(p12, passphrase, tmp_path, "bobs-phone")
    assert [c.subject.rfc4514_string() for c in cas] == ["CN=ztgate test CA"]
    assert device_id(crt) == "phone-0001"
    assert gateway.fingerprint(crt) == out["fingerprint"]

    gateway.enroll(crt, owner="bob", name="phone")
    r = gateway.get("/hello", cert=(crt, key))

    assert r.status == 200
    assert r.upstream_header("X-ZT-Device-Id") == [URN + "phone-0001"]
    assert r.upstream_header("X-ZT-Device-Owner") == ["bob"]


@pytest.mark.skipif(OPENSSL is None, reason="no openssl command")
def test_the_pkcs12_file_opens_with_openssl_3_without_legacy(gateway):
    p12, out = issue_p12(gateway, "openssl-check")

    ok = run(OPENSSL, "pkcs12", "-in", p12, "-nodes", "-passin",
             "pass:" + out["passphrase"])
    bad = run(OPENSSL, "pkcs12", "-in", p12, "-nodes", "-passin",
              "pass:wrong", check=False)

    assert "PRIVATE KEY" in ok.stdout
    assert ok.stdout.count("BEGIN CERTIFICATE") == 2
    assert bad.returncode != 0


# --- renewal ------------------------------------------------------------

def test_a_renewed_certificate_takes_over_from_the_old_one(gateway, tmp_path):
    old = gateway.issue_device("carol-laptop")
    gateway.enroll(old[0], owner="carol")
    assert gateway.get("/", cert=old).status == 200

    new = (os.path.join(gateway.dir, "carol-laptop-2.crt"),
           os.path.join(gateway.dir, "carol-laptop-2.key"))
    ztca("renew", "-d", gateway.ca, old[0], "--key", new[1],
         "--cert", new[0])

    assert device_id(new[0]) == device_id(old[0])
    assert serial(new[0]) != serial(old[0])
    # renewing leaves the old certificate working...
    assert gateway.get("/", cert=old).status == 200
    # ...and the new one is a new enrollment, keyed by its fingerprint
    assert gateway.get("/", cert=new).status == 403

    # The store takes one active certificate per device id: the switch
    # is revoking the old enrollment and enrolling the new one.
    gateway.ztctl("device", "revoke", gateway.fingerprint(old[0]),
                  "--reason", "renewed")
    gateway.enroll(new[0], owner="carol")

    assert gateway.get("/", cert=new).status == 200
    assert gateway.get("/", cert=old).status == 403


def test_old_and_renewed_certificates_overlap_until_the_old_is_revoked(
        gateway):
    old = gateway.issue_device("dave-laptop")
    gateway.enroll(old[0], owner="dave")
    new = (os.path.join(gateway.dir, "dave-laptop-2.crt"),
           os.path.join(gateway.dir, "dave-laptop-2.key"))
    ztca("renew", "-d", gateway.ca, old[0], "--key", new[1],
         "--cert", new[0])

    gateway.enroll(new[0], owner="dave")

    assert gateway.get("/", cert=new).status == 200
    assert gateway.get("/", cert=old).status == 200

    gateway.ztctl("device", "revoke", gateway.fingerprint(old[0]),
                  "--reason", "renewed")

    assert gateway.get("/", cert=new).status == 200
    assert gateway.get("/", cert=old).status == 403


def test_renewal_as_pkcs12_keeps_the_device_id(gateway, tmp_path):
    old = gateway.issue_device("erin-tablet")
    p12 = os.path.join(gateway.dir, "erin-tablet-2.p12")
    crt = os.path.join(gateway.dir, "erin-tablet-2.crt")

    out = fields(ztca("renew", "-d", gateway.ca, old[0], "--p12", p12,
                      "--cert", crt).stdout)

    got_crt, got_key, _ = unpack_p12(p12, out["passphrase"], tmp_path,
                                     "erin-tablet-2")
    assert open(got_crt).read() == open(crt).read()
    assert out["device-id"] == device_id(old[0])
    gateway.enroll(crt, owner="erin")
    assert gateway.get("/", cert=(got_crt, got_key)).status == 200


def test_renewal_is_refused_for_revoked_and_foreign_certificates(
        gateway, tmp_path):
    lost = gateway.issue_device("lost-laptop")
    ztca("revoke", "-d", gateway.ca, lost[0])
    other_ca = str(tmp_path / "other-ca")
    ztca("init", "-d", other_ca)
    stranger = gateway.issue_device("stranger", ca=other_ca)
    out = os.path.join(gateway.dir, "renewed")

    revoked = ztca("renew", "-d", gateway.ca, lost[0], "--key", out + ".key",
                   "--cert", out + ".crt", check=False)
    foreign = ztca("renew", "-d", gateway.ca, stranger[0], "--key",
                   out + ".key", "--cert", out + ".crt", check=False)
    server = ztca("renew", "-d", gateway.ca, gateway.server_crt, "--key",
                  out + ".key", "--cert", out + ".crt", check=False)

    assert revoked.returncode == 1 and "revoked" in revoked.stderr
    assert foreign.returncode == 1 and "not issued by" in foreign.stderr
    assert server.returncode == 1 and "not a device" in server.stderr
    assert not os.path.exists(out + ".key")
    assert not os.path.exists(out + ".crt")


def test_list_expiring_names_only_valid_certificates_due_for_renewal(
        tmp_path):
    ca = str(tmp_path / "ca")
    ztca("init", "-d", ca)

    def device(name, days):
        ztca("device", "-d", ca, "--id", name, "--days", str(days),
             "--cert", str(tmp_path / (name + ".crt")),
             "--key", str(tmp_path / (name + ".key")))
        return str(tmp_path / (name + ".crt"))

    device("due-soon", 10)
    device("due-later", 200)
    lost = device("lost-soon", 5)
    ztca("revoke", "-d", ca, lost)

    everything = ztca("list", "-d", ca).stdout.splitlines()
    expiring = ztca("list", "-d", ca, "--expiring", "30").stdout.splitlines()

    assert [l.split()[0] for l in everything] == ["valid", "valid",
                                                   "revoked"]
    assert [l.split()[3] for l in everything] == ["due-soon", "due-later",
                                                   "lost-soon"]
    assert len(expiring) == 1
    assert expiring[0].split()[0] == "valid"
    assert expiring[0].split()[3] == "due-soon"


# --- expiry and revocation at nginx -------------------------------------

def test_an_expired_device_certificate_is_refused_by_nginx(gateway):
    now = datetime.datetime.utcnow()
    expired = sign_with_ca(gateway, "expired-1",
                           now - datetime.timedelta(days=30),
                           now - datetime.timedelta(days=1))
    fresh = sign_with_ca(gateway, "fresh-1",
                         now - datetime.timedelta(minutes=5),
                         now + datetime.timedelta(days=30))
    gateway.enroll(fresh[0])
    # ztctl will not enroll it; nginx must not let it through either way
    assert gateway.ztctl("device", "enroll", "--cert", expired[0],
                         "--owner", "alice", check=False).returncode != 0

    r = gateway.get("/", cert=expired)

    assert r.status == 400
    assert b"ztgate-echo" not in r.body
    assert "certificate has expired" in gateway.error_log()
    # the same CA's current certificate is fine: it is the expiry
    assert gateway.get("/", cert=fresh).status == 200


def test_a_certificate_revoked_in_the_crl_is_refused_by_nginx(crl_gateway):
    gw = crl_gateway
    kept = gw.issue_device("kept-laptop")
    lost = gw.issue_device("lost-laptop")
    gw.enroll(kept[0], owner="alice")
    gw.enroll(lost[0], owner="bob")
    # Before the reload only /public/ (zt off) is asked: a worker that has
    # opened its trustd channel logs "[alert] open socket left" when a
    # reload shuts it down gracefully (a module bug, reported separately).
    assert gw.get("/public/x", cert=lost).status == 200
    assert gw.get("/public/x", cert=kept).status == 200

    ztca("revoke", "-d", gw.ca, lost[0])
    ztca("crl", "-d", gw.ca, "--out", gw.crl)
    reload_nginx(gw)

    assert gw.get("/public/x", cert=lost).status == 400
    assert gw.get("/", cert=lost).status == 400
    assert "(23:certificate revoked)" in gw.error_log()
    assert gw.get("/", cert=kept).status == 200


@pytest.mark.skipif(OPENSSL is None, reason="no openssl command")
def test_ca_operations_verify_with_openssl_itself(gateway):
    """Server, device and renewed certificates verify with openssl's own
    verify against the ztgate CA; a revoked one fails its CRL check."""
    cafile = os.path.join(gateway.ca, "ca.crt")
    device = gateway.issue_device("verify-me")
    renewed = (os.path.join(gateway.dir, "verify-me-2.crt"),
               os.path.join(gateway.dir, "verify-me-2.key"))
    ztca("renew", "-d", gateway.ca, device[0], "--key", renewed[1],
         "--cert", renewed[0])

    for crt, purpose in ((gateway.server_crt, "sslserver"),
                         (device[0], "sslclient"), (renewed[0], "sslclient")):
        p = run(OPENSSL, "verify", "-purpose", purpose, "-CAfile", cafile,
                crt, check=False)
        assert p.returncode == 0 and ": OK" in p.stdout, p.stdout + p.stderr

    ztca("revoke", "-d", gateway.ca, device[0])
    crl = os.path.join(gateway.dir, "crl.pem")
    ztca("crl", "-d", gateway.ca, "--out", crl)

    p = run(OPENSSL, "verify", "-crl_check", "-CAfile", cafile, "-CRLfile",
            crl, device[0], check=False)
    assert p.returncode != 0
    assert "revoked" in (p.stdout + p.stderr)
    p = run(OPENSSL, "verify", "-crl_check", "-CAfile", cafile, "-CRLfile",
            crl, renewed[0], check=False)
    assert p.returncode == 0, p.stdout + p.stderr
