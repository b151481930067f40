#!/usr/bin/env python3
"""Known-answer vectors for sshfront's key exchange math and host-key wire formats.

Produced by an implementation independent of the Rust code (Python `cryptography` and
hashlib), from fixed inputs, into tests/data/kex_vectors.txt. Format: blocks separated by a
blank line, one `key = value` per line (byte strings in hex), `#` starts a comment.

For each KEX family: fixed private values -> public values and the shared secret K (computed by
`cryptography`), the exchange hash H (RFC 4253 §8 / RFC 4419 §3 / RFC 5656 §4), and the six keys
of RFC 4253 §7.2, some longer than one hash output. The hybrids use fixed KEM outputs (no
sntrup761 in `cryptography`): the vector checks K = HASH(kem || x25519) and the rest. ML-KEM-768
is real (cryptography >= 47): key pair from a fixed 64-byte seed d || z, a ciphertext made by
`cryptography`'s encapsulation, so the Rust side checks its key generation and decapsulation.
Host-key blocks carry signatures made by `cryptography` in the SSH wire format.

Usage: python3 scripts/gen-kex-vectors.py > tests/data/kex_vectors.txt
Requires: pip install cryptography
"""

import hashlib
import struct
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dh, ec, ed25519, mlkem, padding, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

# RFC 3526 primes (same construction as RFC 3526 states; cross-checked by the Rust tests).
def _pi_scaled(bits):
    guard = 64
    one = 1 << (bits + guard)

    def arctan_inv(x):
        s, t, n, x2, sign = 0, one // x, 1, x * x, 1
        while t:
            s += sign * (t // n)
            t //= x2
            n += 2
            sign = -sign
        return s

    return (4 * (4 * arctan_inv(5) - arctan_inv(239))) >> guard


def modp(n, k):
    return 2**n - 2**(n - 64) - 1 + 2**64 * (_pi_scaled(n - 130) + k)


P14 = modp(2048, 124476)
P15 = modp(3072, 1690314)
P16 = modp(4096, 240904)

HASHES = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384,
          "sha512": hashlib.sha512}


def u32(n):
    return struct.pack(">I", n)


def string(b):
    return u32(len(b)) + b


def mpint_mag(n):
    """Big-endian magnitude, minimal (empty for 0)."""
    return n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""


def mpint(n):
    m = mpint_mag(n)
    if m and m[0] & 0x80:
        m = b"\0" + m
    return string(m)


def seeded(label, n):
    """Deterministic filler bytes so the file is reproducible."""
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{label}/{i}".encode()).digest()
        i += 1
    return out[:n]


V_C = b"SSH-2.0-OpenSSH_9.9"
V_S = b"SSH-2.0-sshfront_0.1.0"
I_C = b"\x14" + seeded("kexinit-c", 200)
I_S = b"\x14" + seeded("kexinit-s", 180)

HOST_SEED = seeded("host-ed25519", 32)
host = ed25519.Ed25519PrivateKey.from_private_bytes(HOST_SEED)
host_pub = host.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
K_S = string(b"ssh-ed25519") + string(host_pub)

LENGTHS = {"A": 16, "B": 16, "C": 64, "D": 64, "E": 32, "F": 100}


def derive(hname, k_enc, h, letter, sid, n):
    H = HASHES[hname]
    out = H(k_enc + h + letter.encode() + sid).digest()
    while len(out) < n:
        out += H(k_enc + h + out).digest()
    return out[:n]


def emit(fields):
    for k, v in fields:
        if isinstance(v, (bytes, bytearray)):
            v = v.hex()
        print(f"{k} = {v}")
    print()


def finish(name, hname, middle, k_enc, extra, session_id=None):
    h = HASHES[hname](string(V_C) + string(V_S) + string(I_C) + string(I_S) + string(K_S)
                      + middle + k_enc).digest()
    sid = h if session_id is None else session_id
    fields = [("type", "kex"), ("name", name), ("hash", hname)] + extra + [
        ("v_c", V_C), ("v_s", V_S), ("i_c", I_C), ("i_s", I_S), ("k_s", K_S),
        ("k_encoded", k_enc), ("h", h), ("session_id", sid)]
    for letter, n in LENGTHS.items():
        fields.append((f"key_{letter}", derive(hname, k_enc, h, letter, sid, n)))
    emit(fields)


def dh_vector(name, hname, p, gex_request=None):
    params = dh.DHParameterNumbers(p, 2).parameters()
    x = int.from_bytes(seeded(name + "/x", 32), "big") | (1 << 255)
    y = int.from_bytes(seeded(name + "/y", 64), "big") | (1 << 511)
    e, f = pow(2, x, p), pow(2, y, p)
    pn = dh.DHParameterNumbers(p, 2)
    priv_y = dh.DHPrivateNumbers(y, dh.DHPublicNumbers(f, pn)).private_key()
    k = int.from_bytes(priv_y.exchange(dh.DHPublicNumbers(e, pn).public_key()), "big")
    assert k == pow(e, y, p) == pow(f, x, p)
    _ = params
    extra = [("x", mpint_mag(x)), ("y", mpint_mag(y)), ("e", mpint_mag(e)), ("f", mpint_mag(f)),
             ("k", mpint_mag(k))]
    if gex_request is None:
        middle = mpint(e) + mpint(f)
    else:
        req = b"".join(u32(v) for v in gex_request)
        extra += [("gex_request", req), ("p", mpint_mag(p)), ("g", b"\x02")]
        middle = req + mpint(p) + mpint(2) + mpint(e) + mpint(f)
    finish(name, hname, middle, mpint(k), extra)


def ecdh_vector(name, hname, curve, clen):
    a = ec.derive_private_key(int.from_bytes(seeded(name + "/a", clen), "big") >> 8, curve)
    b = ec.derive_private_key(int.from_bytes(seeded(name + "/b", clen), "big") >> 8, curve)
    qa = a.public_key().public_bytes(serialization.Encoding.X962,
                                     serialization.PublicFormat.UncompressedPoint)
    qb = b.public_key().public_bytes(serialization.Encoding.X962,
                                     serialization.PublicFormat.UncompressedPoint)
    k = a.exchange(ec.ECDH(), b.public_key())
    assert k == b.exchange(ec.ECDH(), a.public_key())
    priv_a = a.private_numbers().private_value.to_bytes(clen, "big")
    extra = [("priv_c", priv_a), ("q_c", qa), ("q_s", qb), ("k", k)]
    finish(name, hname, string(qa) + string(qb),
           mpint(int.from_bytes(k, "big")), extra)


def x25519_pair(label):
    a = x25519.X25519PrivateKey.from_private_bytes(seeded(label + "/a", 32))
    b = x25519.X25519PrivateKey.from_private_bytes(seeded(label + "/b", 32))
    raw = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pa, pb = a.public_key().public_bytes(*raw), b.public_key().public_bytes(*raw)
    k = a.exchange(b.public_key())
    assert k == b.exchange(a.public_key())
    return pa, pb, k


def curve25519_vector(name):
    pa, pb, k = x25519_pair(name)
    finish(name, "sha256", string(pa) + string(pb), mpint(int.from_bytes(k, "big")),
           [("q_c", pa), ("q_s", pb), ("k", k)])
    # A rekey: same K and inputs, but the session id stays the first exchange's H.
    finish(name, "sha256", string(pa) + string(pb), mpint(int.from_bytes(k, "big")),
           [("q_c", pa), ("q_s", pb), ("k", k), ("rekey", "1")],
           session_id=seeded("earlier-h", 32))


def hybrid_vector(name, hname, kem_pub_len, kem_ct_len):
    pa, pb, xk = x25519_pair(name)
    kem_pub = seeded(name + "/kem-pub", kem_pub_len)
    kem_ct = seeded(name + "/kem-ct", kem_ct_len)
    kem_ss = seeded(name + "/kem-ss", 32)
    q_c, q_s = kem_pub + pa, kem_ct + pb
    k = HASHES[hname](kem_ss + xk).digest()
    finish(name, hname, string(q_c) + string(q_s), string(k),
           [("q_c", q_c), ("q_s", q_s), ("kem_shared", kem_ss), ("x25519_shared", xk),
            ("k", k)])


def mlkem_vector(name):
    pa, pb, xk = x25519_pair(name)
    seed = seeded(name + "/mlkem-seed", 64)
    dk = mlkem.MLKEM768PrivateKey.from_seed_bytes(seed)
    ek = dk.public_key().public_bytes_raw()
    kem_ss, ct = dk.public_key().encapsulate()
    assert dk.decapsulate(ct) == kem_ss
    q_c, q_s = ek + pa, ct + pb
    k = hashlib.sha256(kem_ss + xk).digest()
    finish(name, "sha256", string(q_c) + string(q_s), string(k),
           [("q_c", q_c), ("q_s", q_s), ("mlkem_seed", seed), ("kem_shared", kem_ss),
            ("x25519_shared", xk), ("k", k)])


def ecdsa_sig_blob(name, der):
    r, s = decode_dss_signature(der)
    return string(name.encode()) + string(mpint(r) + mpint(s))


def hostkey_vectors():
    data = seeded("signed-data", 32)
    # Ed25519 (RFC 8709): string "ssh-ed25519", string 64-byte signature.
    emit([("type", "hostkey-sig"), ("alg", "ssh-ed25519"), ("public_blob", K_S), ("data", data),
          ("signature_blob", string(b"ssh-ed25519") + string(host.sign(data)))])
    # ECDSA (RFC 5656 §3.1): string name, string(mpint r, mpint s).
    for alg, curve, cid, h, clen in [
        ("ecdsa-sha2-nistp256", ec.SECP256R1(), b"nistp256", hashes.SHA256(), 32),
        ("ecdsa-sha2-nistp384", ec.SECP384R1(), b"nistp384", hashes.SHA384(), 48),
        ("ecdsa-sha2-nistp521", ec.SECP521R1(), b"nistp521", hashes.SHA512(), 66),
    ]:
        key = ec.derive_private_key(int.from_bytes(seeded(alg, clen), "big") >> 8, curve)
        q = key.public_key().public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)
        blob = string(alg.encode()) + string(cid) + string(q)
        sig = ecdsa_sig_blob(alg, key.sign(data, ec.ECDSA(h)))
        emit([("type", "hostkey-sig"), ("alg", alg), ("public_blob", blob), ("data", data),
              ("signature_blob", sig)])
    # RSA (RFC 4253 §6.6, RFC 8332): key blob "ssh-rsa", mpint e, mpint n; the signature
    # names the hash.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pn = key.public_key().public_numbers()
    blob = string(b"ssh-rsa") + mpint(pn.e) + mpint(pn.n)
    for alg, h in [("rsa-sha2-256", hashes.SHA256()), ("rsa-sha2-512", hashes.SHA512()),
                   ("ssh-rsa", hashes.SHA1())]:
        sig = key.sign(data, padding.PKCS1v15(), h)
        emit([("type", "hostkey-sig"), ("alg", alg), ("public_blob", blob), ("data", data),
              ("signature_blob", string(alg.encode()) + string(sig))])


def main():
    print("# Generated by scripts/gen-kex-vectors.py (Python cryptography + hashlib).")
    print("# Do not edit by hand.")
    print()
    dh_vector("diffie-hellman-group14-sha256", "sha256", P14)
    dh_vector("diffie-hellman-group16-sha512", "sha512", P16)
    dh_vector("diffie-hellman-group14-sha1", "sha1", P14)
    dh_vector("diffie-hellman-group-exchange-sha256", "sha256", P15,
              gex_request=(2048, 3072, 8192))
    dh_vector("diffie-hellman-group-exchange-sha256", "sha256", P15, gex_request=(3072,))
    ecdh_vector("ecdh-sha2-nistp256", "sha256", ec.SECP256R1(), 32)
    ecdh_vector("ecdh-sha2-nistp384", "sha384", ec.SECP384R1(), 48)
    ecdh_vector("ecdh-sha2-nistp521", "sha512", ec.SECP521R1(), 66)
    curve25519_vector("curve25519-sha256")
    hybrid_vector("mlkem768x25519-sha256", "sha256", 1184, 1088)
    mlkem_vector("mlkem768x25519-sha256")
    hybrid_vector("sntrup761x25519-sha512", "sha512", 1158, 1039)
    hostkey_vectors()


if __name__ == "__main__":
    sys.exit(main())
