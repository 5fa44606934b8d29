#!/usr/bin/env python3
"""Write the seed corpus of fuzz_webauthn: real WebAuthn ceremonies.

    gen_webauthn_corpus.py [CORPUS_DIR]   (default: tests/fuzz/corpus)

A software authenticator here (python3-cryptography, and a small CBOR
encoder written from RFC 8949, independent of libcbor and of
trustd/id_webauthn.c) makes registrations ("none" and "packed" self
attestation, ES256, EdDSA and RS256 keys) and assertions for the relying
party fuzz_webauthn.c expects, so that the fuzzer starts from inputs that
pass every check and mutates from there.  Deterministic: keys come from
fixed seeds and signatures that are randomized (ECDSA) are made once and
written; rerunning rewrites the same names.
"""

import hashlib
import json
import os
import struct
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

RP_ID = "localhost"
ORIGIN = "https://localhost"
CHALLENGE = bytes(range(32))


def b64u(data):
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- CBOR (RFC 8949), the subset WebAuthn uses --------------------------------

def cbor_head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    if n < 0x100:
        return bytes([major << 5 | 24, n])
    if n < 0x10000:
        return bytes([major << 5 | 25]) + struct.pack(">H", n)
    return bytes([major << 5 | 26]) + struct.pack(">I", n)


def cbor(v):
    if isinstance(v, bool):
        return bytes([0xf5 if v else 0xf4])
    if isinstance(v, int):
        return cbor_head(0, v) if v >= 0 else cbor_head(1, -1 - v)
    if isinstance(v, bytes):
        return cbor_head(2, len(v)) + v
    if isinstance(v, str):
        b = v.encode()
        return cbor_head(3, len(b)) + b
    if isinstance(v, list):
        return cbor_head(4, len(v)) + b"".join(cbor(x) for x in v)
    if isinstance(v, dict):
        return cbor_head(5, len(v)) + b"".join(cbor(k) + cbor(x)
                                               for k, x in v.items())
    raise TypeError(v)


# --- keys as COSE ---------------------------------------------------------------

def cose_key(priv):
    pub = priv.public_key()
    if isinstance(priv, ec.EllipticCurvePrivateKey):
        n = pub.public_numbers()
        return {1: 2, 3: -7, -1: 1, -2: n.x.to_bytes(32, "big"),
                -3: n.y.to_bytes(32, "big")}
    if isinstance(priv, ed25519.Ed25519PrivateKey):
        raw = pub.public_bytes(serialization.Encoding.Raw,
                               serialization.PublicFormat.Raw)
        return {1: 1, 3: -8, -1: 6, -2: raw}
    n = pub.public_numbers()
    return {1: 3, 3: -257, -1: n.n.to_bytes((n.n.bit_length() + 7) // 8,
                                            "big"),
            -2: n.e.to_bytes(3, "big")}


def sign(priv, data):
    if isinstance(priv, ec.EllipticCurvePrivateKey):
        return priv.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(priv, ed25519.Ed25519PrivateKey):
        return priv.sign(data)
    return priv.sign(data, padding.PKCS1v15(), hashes.SHA256())


def client_data(kind):
    return json.dumps({"type": kind, "challenge": b64u(CHALLENGE),
                       "origin": ORIGIN, "crossOrigin": False},
                      separators=(",", ":")).encode()


def auth_data(flags, count, cred_id=None, key=None):
    ad = hashlib.sha256(RP_ID.encode()).digest() + bytes([flags]) + \
        struct.pack(">I", count)
    if cred_id is not None:
        ad += bytes(16) + struct.pack(">H", len(cred_id)) + cred_id + \
            cbor(cose_key(key))
    return ad


def part(b):
    return struct.pack(">H", len(b)) + b


def main():
    out = os.path.join(sys.argv[1] if len(sys.argv) > 1
                       else os.path.join(os.path.dirname(__file__),
                                         "corpus"), "fuzz_webauthn")
    os.makedirs(out, exist_ok=True)

    keys = {
        "es256": ec.derive_private_key(0x5eed1, ec.SECP256R1()),
        "eddsa": ed25519.Ed25519PrivateKey.from_private_bytes(bytes(
            range(1, 33))),
        "rs256": rsa.generate_private_key(65537, 2048),
    }
    seeds = {}
    for name, key in keys.items():
        cred = hashlib.sha256(name.encode()).digest()[:16]
        ad = auth_data(0x45, 1, cred, key)          # UP, UV, AT
        cd = client_data("webauthn.create")
        seeds["reg-none-" + name] = bytes([0x80]) + part(cd) + part(cbor(
            {"fmt": "none", "attStmt": {}, "authData": ad}))
        sig = sign(key, ad + hashlib.sha256(cd).digest())
        alg = cose_key(key)[3]
        seeds["reg-packed-" + name] = bytes([0]) + part(cd) + part(cbor(
            {"fmt": "packed", "attStmt": {"alg": alg, "sig": sig},
             "authData": ad}))

        ad2 = auth_data(0x05, 7)                     # UP, UV
        cd2 = client_data("webauthn.get")
        sig2 = sign(key, ad2 + hashlib.sha256(cd2).digest())
        seeds["assert-" + name] = bytes([0x81]) + part(cbor(cose_key(key))) \
            + part(cd2) + part(ad2) + part(sig2) + part(struct.pack(">I", 6))
        seeds["assert-counter-" + name] = bytes([1]) + \
            part(cbor(cose_key(key))) + part(cd2) + part(ad2) + part(sig2) \
            + part(struct.pack(">I", 7))
        seeds["cose-" + name] = bytes([2]) + cbor(cose_key(key))
    seeds["b64"] = bytes([3]) + b64u(bytes(range(40))).encode()

    for name, data in seeds.items():
        path = os.path.join(out, "seed-" + name)
        # randomized signatures: written once, then kept
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
