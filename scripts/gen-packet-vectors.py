#!/usr/bin/env python3
"""Known-answer vectors for sshfront's binary packet layer (RFC 4253 §6), produced with an
implementation independent of ours: Python's `cryptography` package and hashlib/hmac.

Writes tests/data/packet_vectors.txt. One line per vector, fields separated by one space:

    cipher mac key iv mac_key seq payloads paddings expected

`mac` is `-` for AEAD ciphers and the plaintext state; empty hex fields are `-`. `payloads`,
`paddings` and `expected` are comma-separated hex, one entry per packet; the packets are sealed
back to back with one key state starting at sequence number `seq` (so CTR keystreams, GCM
invocation counters and sequence numbers run on across them, and wrap past 2^32 - 1).

Padding length follows RFC 4253 §6 with the minimum (>= 4) that aligns to max(8, block),
excluding packet_length for -etm MACs and AEAD ciphers (openssh PROTOCOL); padding bytes are
fixed here so the Rust test can feed the same bytes through its Rng.

Usage: python3 scripts/gen-packet-vectors.py > tests/data/packet_vectors.txt
"""

import hashlib
import hmac
import struct
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.poly1305 import Poly1305

CIPHERS = {
    # name: (key_len, iv_len, block, aead)
    "none": (0, 0, 8, False),
    "chacha20-poly1305@openssh.com": (64, 0, 8, True),
    "aes128-ctr": (16, 16, 16, False),
    "aes192-ctr": (24, 16, 16, False),
    "aes256-ctr": (32, 16, 16, False),
    "aes128-gcm@openssh.com": (16, 12, 16, True),
    "aes256-gcm@openssh.com": (32, 12, 16, True),
}

MACS = {
    # name: (hash, key_len, etm)
    "hmac-sha2-256-etm@openssh.com": (hashlib.sha256, 32, True),
    "hmac-sha2-512-etm@openssh.com": (hashlib.sha512, 64, True),
    "hmac-sha1-etm@openssh.com": (hashlib.sha1, 20, True),
    "hmac-sha2-256": (hashlib.sha256, 32, False),
    "hmac-sha2-512": (hashlib.sha512, 64, False),
    "hmac-sha1": (hashlib.sha1, 20, False),
}

PAYLOAD_SIZES = [0, 17, 100]
SEQ = 0xFFFFFFFE  # three packets: 2^32-2, 2^32-1, 0


def stream(label, n):
    """n deterministic bytes (SHA-256 in counter mode over a label)."""
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{label}/{i}".encode()).digest()
        i += 1
    return out[:n]


def padding_len(payload_len, block, length_in_clear):
    align = max(8, block)
    aligned = (1 if length_in_clear else 5) + payload_len
    pad = align - aligned % align
    if pad < 4:
        pad += align
    return pad


class ChaChaOpenssh:
    """PROTOCOL.chacha20poly1305: K_2 = key[:32] for payload and Poly1305 key, K_1 = key[32:]
    for packet_length; original (64-bit nonce) ChaCha20 with nonce = uint64 seq, big-endian."""

    def __init__(self, key):
        self.k2, self.k1 = key[:32], key[32:]

    @staticmethod
    def _chacha(key, seq, counter, data):
        # cryptography's 16-byte "nonce" is the whole last row of the state: a 64-bit
        # little-endian block counter then the 64-bit nonce -- exactly DJB's layout.
        iv = struct.pack("<Q", counter) + struct.pack(">Q", seq)
        enc = Cipher(algorithms.ChaCha20(key, iv), mode=None).encryptor()
        return enc.update(data) + enc.finalize()

    def seal(self, seq, packet):
        enc_len = self._chacha(self.k1, seq, 0, packet[:4])
        poly_key = self._chacha(self.k2, seq, 0, bytes(32))
        ct = self._chacha(self.k2, seq, 1, packet[4:])
        tag = Poly1305.generate_tag(poly_key, enc_len + ct)
        return enc_len + ct + tag


def seal_all(cipher, mac, key, iv, mac_key, payloads, paddings):
    key_len, iv_len, block, aead = CIPHERS[cipher]
    etm = mac is not None and MACS[mac][2]
    if cipher.startswith("aes") and cipher.endswith("-ctr"):
        ctr = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    if cipher.startswith("aes") and cipher.endswith("gcm@openssh.com"):
        gcm = AESGCM(key)
        fixed, counter = iv[:4], int.from_bytes(iv[4:], "big")
    if cipher.startswith("chacha"):
        chacha = ChaChaOpenssh(key)
    out = []
    seq = SEQ
    for payload, pad in zip(payloads, paddings):
        packet_length = 1 + len(payload) + len(pad)
        packet = struct.pack(">IB", packet_length, len(pad)) + payload + pad
        assert len(pad) >= 4
        if cipher == "none":
            wire = packet
        elif cipher.startswith("chacha"):
            wire = chacha.seal(seq, packet)
        elif "gcm" in cipher:
            nonce = fixed + counter.to_bytes(8, "big")
            counter = (counter + 1) % 2**64
            wire = packet[:4] + gcm.encrypt(nonce, packet[4:], packet[:4])
        else:
            h = MACS[mac][0]
            s = struct.pack(">I", seq)
            if etm:
                ct = packet[:4] + ctr.update(packet[4:])
                wire = ct + hmac.new(mac_key, s + ct, h).digest()
            else:
                tag = hmac.new(mac_key, s + packet, h).digest()
                wire = ctr.update(packet) + tag
        out.append(wire)
        seq = (seq + 1) % 2**32
    return out


def hx(b):
    return b.hex() if b else ""


def field(b):
    return b.hex() if b else "-"


def vector(cipher, mac):
    key_len, iv_len, block, aead = CIPHERS[cipher]
    label = f"{cipher}/{mac}"
    key = stream(label + "/key", key_len)
    iv = stream(label + "/iv", iv_len)
    mac_key = stream(label + "/mackey", MACS[mac][1]) if mac else b""
    length_in_clear = aead or (mac is not None and MACS[mac][2])
    payloads = [stream(f"{label}/payload{i}", n) for i, n in enumerate(PAYLOAD_SIZES)]
    paddings = [
        stream(f"{label}/pad{i}", padding_len(len(p), block, length_in_clear))
        for i, p in enumerate(payloads)
    ]
    wires = seal_all(cipher, mac, key, iv, mac_key, payloads, paddings)
    return " ".join(
        [
            cipher,
            mac or "-",
            field(key),
            field(iv),
            field(mac_key),
            str(SEQ),
            ",".join(hx(p) for p in payloads),
            ",".join(hx(p) for p in paddings),
            ",".join(hx(w) for w in wires),
        ]
    )


def main():
    lines = ["# generated by scripts/gen-packet-vectors.py; do not edit"]
    for cipher, (_, _, _, aead) in CIPHERS.items():
        if aead or cipher == "none":
            lines.append(vector(cipher, None))
        else:
            for mac in MACS:
                lines.append(vector(cipher, mac))
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
