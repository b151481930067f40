"""Second, independent client for the gateway tests: paramiko logs in with a password and
carries random bytes through a direct-tcpip channel to an echo server, once per key exchange,
cipher and MAC that paramiko and sshfront share (each forced alone, the others left at
paramiko's defaults), plus once with zlib@openssh.com compression.

Usage: paramiko_gateway.py PORT USER PASSWORD ECHO_PORT KEX,.. CIPHERS,.. MACS,..
(the lists are sshfront's names). Prints one line per case: "ok KIND NAME" or
"FAIL KIND NAME: why"; exits 1 if any case failed or nothing was shared.
"""

import logging
import os
import socket
import sys

import paramiko

TIMEOUT = 30


class KexSeen(logging.Handler):
    """Collects the method paramiko reports as agreed ("Kex: NAME", logged at DEBUG when it
    reads the server's KEXINIT; its kex_engine is gone again once the exchange is done)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.names = []

    def emit(self, record):
        msg = record.getMessage()
        if msg.startswith("Kex: "):
            self.names.append(msg[len("Kex: "):])


def round_trip(port, user, password, echo_port, kind, name):
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    t = paramiko.Transport(sock)
    seen = KexSeen()
    t.logger.addHandler(seen)
    t.logger.setLevel(logging.DEBUG)
    try:
        t.banner_timeout = TIMEOUT
        t.auth_timeout = TIMEOUT
        opts = t.get_security_options()
        if kind == "kex":
            opts.kex = (name,)
        elif kind == "cipher":
            opts.ciphers = (name,)
        elif kind == "mac":
            opts.digests = (name,)
        elif kind == "compression":
            t.use_compression(True)
        t.start_client(timeout=TIMEOUT)
        t.auth_password(user, password)
        if kind == "kex" and seen.names != [name]:
            return "negotiated kex %s" % seen.names
        ch = t.open_channel(
            "direct-tcpip", ("127.0.0.1", echo_port), ("127.0.0.1", 5555), timeout=TIMEOUT
        )
        ch.settimeout(TIMEOUT)
        data = os.urandom(200_000)
        ch.sendall(data)
        ch.shutdown_write()
        back = bytearray()
        while True:
            chunk = ch.recv(65536)
            if not chunk:
                break
            back += chunk
        ch.close()
        if bytes(back) != data:
            return "bytes differ (%d of %d)" % (len(back), len(data))
        if kind == "cipher" and t.remote_cipher != name:
            return "negotiated %s" % t.remote_cipher
        if kind == "mac" and t.remote_mac != name:
            return "negotiated %s" % t.remote_mac
        return None
    except Exception as e:  # report and go on with the next case
        return "%s: %s" % (type(e).__name__, e)
    finally:
        t.logger.removeHandler(seen)
        t.close()


def main():
    port, user, password, echo_port = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    ours = {
        "kex": sys.argv[5].split(","),
        "cipher": sys.argv[6].split(","),
        "mac": sys.argv[7].split(","),
    }
    theirs = {
        "kex": paramiko.Transport._preferred_kex,
        "cipher": paramiko.Transport._preferred_ciphers,
        "mac": paramiko.Transport._preferred_macs,
    }
    cases = []
    for kind in ("kex", "cipher", "mac"):
        shared = [n for n in theirs[kind] if n in ours[kind]]
        if not shared:
            print("FAIL %s none shared" % kind)
            return 1
        cases += [(kind, n) for n in shared]
    cases.append(("compression", "zlib@openssh.com"))
    failed = 0
    for kind, name in cases:
        err = round_trip(port, user, password, echo_port, kind, name)
        if err is None:
            print("ok %s %s" % (kind, name))
        else:
            failed += 1
            print("FAIL %s %s: %s" % (kind, name, err))
    sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
