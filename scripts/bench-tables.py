#!/usr/bin/env python3
"""Tables for BENCHMARKS.md from the raw results of scripts/compare.sh (one JSON object per
bench-harness run), so no figure is typed by hand.

  scripts/bench-tables.py RESULTS.jsonl [--machine machine.txt]    # the comparison tables
  scripts/bench-tables.py RESULTS.jsonl --headline                  # the headline table
  scripts/bench-tables.py RESULTS.jsonl --update BENCHMARKS.md      # rewrite both in place
  scripts/bench-tables.py RESULTS.jsonl --check BENCHMARKS.md       # exit 1 if they differ

When the plots of scripts/bench-plots.py lie next to RESULTS.jsonl, the comparison block links
them (relative to the Markdown file; to RESULTS' directory on stdout).

--update replaces what lies between the markers
  <!-- generated: headline (scripts/bench-tables.py) -->  …  <!-- end generated -->
  <!-- generated: comparison (scripts/bench-tables.py) -->  …  <!-- end generated -->
Every cell is the median over rounds (min–max when there is more than one round); ratios and
the "met?" column are computed from those medians against the targets below.
"""

import argparse
import functools
import json
import os
import re
import statistics
import sys

SERVERS = ["sshfront", "sshd", "russh"]

# Targets from the project brief, checked against the medians.
CPU_MS_TARGET = 0.25  # server CPU per publickey handshake
FLOOR_RATIO_TARGET = 1.4  # server CPU per publickey handshake at C=64 over the crypto floor
C1_CPU_MS_TARGET = 0.15  # server CPU per publickey handshake at C=1
TAIL_TARGET = 2.0  # p99 / p50 at C=64, and no failures
BULK_RATE_TARGET = 1.3  # sshfront MB/s over sshd's, one connection, both ciphers
BULK_CPU_TARGET = {"aes128-gcm": 0.3, "chacha20-poly1305": 0.6}  # server core-s/GB
IDLE_TARGET = 8 * 1024  # bytes per idle authenticated connection


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def get(*keys):
    return lambda r: functools.reduce(lambda d, k: (d or {}).get(k), keys, r)


class Results:
    def __init__(self, rows):
        self.rows = rows

    def runs(self, test, auth, server):
        return [
            r["result"]
            for r in self.rows
            if r["test"] == test and r["auth"] == auth and r["server"] == server
        ]

    def values(self, test, auth, server, key, ok_key="ok"):
        rs = [r for r in self.runs(test, auth, server) if r.get(ok_key, 0)]
        return [v for v in (key(r) for r in rs) if isinstance(v, (int, float))]

    def median(self, test, auth, server, key, ok_key="ok"):
        vals = self.values(test, auth, server, key, ok_key)
        return statistics.median(vals) if vals else None


def cell(vals, fmt):
    m = statistics.median(vals)
    if len(vals) == 1:
        return fmt % m
    return (fmt % m) + " (" + (fmt % min(vals)) + "–" + (fmt % max(vals)) + ")"


def why(rs):
    if not rs:
        return "not measured"
    f = {}
    for r in rs:
        for k, v in (r.get("failures") or {}).items():
            f[k] = f.get(k, 0) + v
        if "error" in r:
            # One reason per kind: a skip's figures differ from run to run ("skipped: …").
            e = r["error"].split(":")[0] if r["error"].startswith("skipped") else r["error"]
            f[e] = f.get(e, 0) + 1
    return "not measured: " + (", ".join(f"{k}×{v}" for k, v in f.items()) or "no successful run")


def ratio(a, b):
    return "%.2f" % (a / b) if a is not None and b not in (None, 0) else "—"


HANDSHAKE_POINTS = ["handshake_c1", "handshake_c8", "handshake_c64"]
HANDSHAKE_METRICS = [
    ("handshakes/s", get("handshakes_per_s"), "%.0f", "ok"),
    ("server CPU ms/handshake", get("server_cpu_ms_per_handshake"), "%.3f", "ok"),
    ("harness CPU ms/handshake", get("harness_cpu_ms_per_handshake"), "%.3f", "ok"),
    ("p50 ms", get("latency_ms", "p50"), "%.2f", "ok"),
    ("p99 ms", get("latency_ms", "p99"), "%.2f", "ok"),
    ("failed", get("failed"), "%d", "ok"),
]
BULK_POINTS = ["bulk_aes128-gcm@openssh.com", "bulk_chacha20-poly1305@openssh.com"]
BULK_METRICS = [
    ("MB/s", get("total_mb_per_s"), "%.0f", "ok"),
    ("server core-s/GB", get("server_core_s_per_gb"), "%.3f", "ok"),
    ("harness core-s/GB", get("harness_core_s_per_gb"), "%.3f", "ok"),
]
MULTI_METRICS = BULK_METRICS + [
    ("failed connections", get("failed"), "%d", "ok"),
]
IDLE_METRICS = [
    ("server RSS bytes/conn", get("server_rss_bytes_per_conn"), "%.0f", "held"),
    ("server PSS bytes/conn", get("server_pss_bytes_per_conn"), "%.0f", "held"),
    ("held", get("held"), "%d", "held"),
]


def table(res, title, tests, auth, metrics):
    # A section the run left out (compare.sh --only) gets no table at all.
    if not any(r["test"] in tests and r["auth"] == auth for r in res.rows):
        return []
    out = [f"### {title}", ""]
    head = ["point", "metric"] + SERVERS + ["sshfront/sshd", "sshfront/russh"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for test in tests:
        for name, key, fmt, ok_key in metrics:
            cells, meds = [], {}
            for s in SERVERS:
                vals = res.values(test, auth, s, key, ok_key)
                meds[s] = statistics.median(vals) if vals else None
                cells.append(cell(vals, fmt) if vals else why(res.runs(test, auth, s)))
            out.append(
                f"| {test} | {name} | "
                + " | ".join(cells)
                + f" | {ratio(meds['sshfront'], meds['sshd'])}"
                + f" | {ratio(meds['sshfront'], meds['russh'])} |"
            )
    out.append("")
    return out


def multi_points(res):
    """The multi-connection bulk points present (bulk<K>_<cipher>), by K then cipher."""
    found = {r["test"] for r in res.rows if re.fullmatch(r"bulk\d+_.+", r["test"])}
    return sorted(found, key=lambda t: (int(re.match(r"bulk(\d+)_", t).group(1)), t))


def big_idle_points(res):
    """The large idle points present (idle_<N>), by N."""
    found = {r["test"] for r in res.rows if re.fullmatch(r"idle_\d+", r["test"])}
    return sorted(found, key=lambda t: int(t.split("_")[1]))


PLOTS = [
    ("handshake-cdf.png", "Handshake latency CDF per server (publickey auth, C=1, 8, 64)"),
    ("bulk.png", "Bulk through direct-tcpip: MB/s and server core-s/GB, 1, 8 and 64 connections"),
    ("memory.png", "Server memory per idle connection"),
]


def plot_links(figdir, relto):
    out = []
    for name, title in PLOTS:
        path = os.path.join(figdir, name)
        if os.path.exists(path):
            out.append(f"![{title}]({os.path.relpath(path, relto)})")
            out.append("")
    return (["### Plots", ""] + out) if out else []


def comparison(res, figdir=None, relto=None):
    out = []
    out += table(
        res,
        "Handshakes with ed25519 publickey auth (curve25519-sha256, ssh-ed25519)",
        HANDSHAKE_POINTS,
        "publickey",
        HANDSHAKE_METRICS,
    )
    out += table(
        res,
        "KEX-only handshakes (version, curve25519-sha256 KEX, NEWKEYS, SERVICE_ACCEPT; "
        "no user auth)",
        HANDSHAKE_POINTS,
        "none",
        HANDSHAKE_METRICS,
    )
    out += table(
        res,
        "Bulk through direct-tcpip, one connection (publickey auth)",
        BULK_POINTS,
        "publickey",
        BULK_METRICS,
    )
    multi = multi_points(res)
    if multi:
        out += table(
            res,
            "Bulk through direct-tcpip, K concurrent connections (bulk<K>_…: aggregate MB/s, "
            "the same bytes in total split over K; publickey auth)",
            multi,
            "publickey",
            MULTI_METRICS,
        )
    for auth in ("publickey", "none"):
        if any(r["test"] == "idle" and r["auth"] == auth for r in res.rows):
            out += table(res, f"Idle connections (auth: {auth})", ["idle"], auth, IDLE_METRICS)
    big = big_idle_points(res)
    if big:
        out += table(
            res,
            "Idle connections, large (idle_<N>: N held, auth: publickey, a fresh server each)",
            big,
            "publickey",
            IDLE_METRICS,
        )
    out += floor_table(res)
    if figdir:
        out += plot_links(figdir, relto or figdir)
    return out


def floors(res, beside=None, round_=None):
    """Crypto floors of the run: all of them, or those measured beside one point of one round."""
    return [
        r["result"]["floor_cpu_ms_per_handshake"]
        for r in res.rows
        if r["test"] == "crypto_floor"
        and isinstance(r["result"].get("floor_cpu_ms_per_handshake"), (int, float))
        and (beside is None or (r.get("beside") == beside and r["round"] == round_))
    ]


def beside_floors(res):
    return any(r["test"] == "crypto_floor" and r.get("beside") for r in res.rows)


def floor_ratio(res, test, server):
    """Server CPU per publickey handshake of `test` over the crypto floor.

    Floors measured beside each point (compare.sh since 2026-12-03, just before and after it):
    each round's point over the mean of its own two floors, then the median over rounds, as the
    machine's speed drifts within minutes. Older results have one floor per round: the median
    point over the median floor, as they were tabled then."""
    if not beside_floors(res):
        fl = floors(res)
        m = res.median(test, "publickey", server, get("server_cpu_ms_per_handshake"))
        return m / statistics.median(fl) if fl and m is not None else None
    ratios = []
    for r in res.rows:
        if r["test"] != test or r["auth"] != "publickey" or r["server"] != server:
            continue
        v = r["result"].get("server_cpu_ms_per_handshake")
        fl = floors(res, f"{server}/{test}", r["round"])
        if r["result"].get("ok") and isinstance(v, (int, float)) and fl:
            ratios.append(v / statistics.mean(fl))
    return statistics.median(ratios) if ratios else None


def floor_table(res):
    """Server CPU per publickey handshake over the crypto floor measured in the same run
    (bench-harness crypto: X25519 + Ed25519 sign + Ed25519 verify); empty without a floor."""
    fl = floors(res)
    if not fl or not any(r["test"] in HANDSHAKE_POINTS for r in res.rows):
        return []
    how = (
        " Each point is divided by the mean of the two floors measured just before and after it"
        " in the same round; the ratio is the median over rounds."
        if beside_floors(res)
        else ""
    )
    out = [
        "### Handshake CPU over the crypto floor",
        "",
        f"Crypto floor (median of {len(fl)}): {cell(fl, '%.3f')} ms per handshake.{how} "
        f"Targets: ≤ {FLOOR_RATIO_TARGET}× at C=64, ≤ {C1_CPU_MS_TARGET} ms at C=1.",
        "",
        "| point | " + " | ".join(f"{s} ms | {s} / floor" for s in SERVERS) + " | sshfront met? |",
        "|" + "---|" * (2 * len(SERVERS) + 2),
    ]
    for test in HANDSHAKE_POINTS:
        cells, meds = [], {}
        for s in SERVERS:
            meds[s] = res.median(test, "publickey", s, get("server_cpu_ms_per_handshake"))
            cells += [fmt_or_dash(meds[s], "%.3f"), fmt_or_dash(floor_ratio(res, test, s), "%.2f")]
        m = meds["sshfront"]
        r64 = floor_ratio(res, test, "sshfront")
        if m is None:
            met = "—"
        elif test == "handshake_c64":
            met = "yes" if r64 is not None and r64 <= FLOOR_RATIO_TARGET else "no"
        elif test == "handshake_c1":
            met = "yes" if m <= C1_CPU_MS_TARGET else "no"
        else:
            met = ""
        out.append(f"| {test} | " + " | ".join(cells) + f" | {met} |")
    out.append("")
    return out


def fmt_or_dash(v, fmt):
    return "—" if v is None else fmt % v


def human_bytes(b):
    if b is None:
        return "—"
    if b >= 1e6:
        return "%.3g MB" % (b / 1e6)
    if b >= 1e4:
        return "%.3g KB" % (b / 1e3)
    return "%.0f B" % b


def bold(text, yes):
    return f"**{text}**" if yes else text


def headline(res):
    med = res.median
    rows = []

    # Server CPU per publickey handshake at C=1/8/64, against the target.
    cpu = {
        s: [med(p, "publickey", s, get("server_cpu_ms_per_handshake")) for p in HANDSHAKE_POINTS]
        for s in SERVERS
    }
    ours = cpu["sshfront"]
    met_at = [c for c, v in zip(("1", "8", "64"), ours) if v is not None and v <= CPU_MS_TARGET]
    missed = [(c, v) for c, v in zip(("1", "8", "64"), ours) if v is not None and v > CPU_MS_TARGET]
    if not missed and not met_at:
        met = "—"
    elif not missed:
        met = "yes"
    elif not met_at:
        met = "no"
    else:
        met = "at C=" + " and ".join(met_at) + "; " + "; ".join(
            f"C={c} misses by {v - CPU_MS_TARGET:.2f} ms" for c, v in missed
        )

    def cpu_cell(s):
        vals = [
            bold(fmt_or_dash(v, "%.3f"), s == "sshfront" and v is not None and v <= CPU_MS_TARGET)
            for v in cpu[s]
        ]
        return " / ".join(vals) + " ms"

    rows.append(
        ["server CPU per handshake, publickey auth, C=1 / 8 / 64"]
        + [cpu_cell(s) for s in SERVERS]
        + [f"≤ {CPU_MS_TARGET} ms", met]
    )

    fl = floors(res)
    if fl:
        floor = statistics.median(fl)
        r64 = {s: floor_ratio(res, "handshake_c64", s) for s in SERVERS}
        ours1 = cpu["sshfront"][0]
        ok64 = r64["sshfront"] is not None and r64["sshfront"] <= FLOOR_RATIO_TARGET
        ok1 = ours1 is not None and ours1 <= C1_CPU_MS_TARGET
        where = "floors beside each point" if beside_floors(res) else f"median of {len(fl)}"
        rows.append(
            [f"server CPU per handshake over the crypto floor ({floor:.3f} ms, {where}), C=64"]
            + [bold(fmt_or_dash(r64[s], "%.2f") + "×", s == "sshfront" and ok64) for s in SERVERS]
            + [
                f"≤ {FLOOR_RATIO_TARGET:g}× at C=64; ≤ {C1_CPU_MS_TARGET:g} ms at C=1",
                f"C=64 {'yes' if ok64 else 'no'}; C=1 {'yes' if ok1 else 'no'}",
            ]
        )

    rate = {s: med("handshake_c64", "publickey", s, get("handshakes_per_s")) for s in SERVERS}
    rows.append(
        ["handshakes/s, publickey auth, C=64"]
        + [fmt_or_dash(rate[s], "%.0f") for s in SERVERS]
        + ["—", "—"]
    )

    def tail(s):
        p99 = med("handshake_c64", "publickey", s, get("latency_ms", "p99"))
        p50 = med("handshake_c64", "publickey", s, get("latency_ms", "p50"))
        failed = sum(
            r.get("failed", 0) or 0 for r in res.runs("handshake_c64", "publickey", s)
        )
        return p99, p50, failed

    tails = {s: tail(s) for s in SERVERS}

    def tail_cell(s):
        p99, p50, failed = tails[s]
        if p99 is None or not p50:
            return "—"
        r = p99 / p50
        text = f"{p99:.2f} / {p50:.2f} ms = " + bold(
            f"{r:.2f}×", s == "sshfront" and r <= TAIL_TARGET and failed == 0
        )
        return text + (f", {failed} failures" if s == "sshfront" else "")

    p99, p50, failed = tails["sshfront"]
    tail_met = p99 is not None and p50 and p99 / p50 <= TAIL_TARGET and failed == 0
    rows.append(
        ["p99 / p50 at C=64, publickey auth"]
        + [tail_cell(s) for s in SERVERS]
        + [f"≤ {TAIL_TARGET:g}×, no failures", "yes" if tail_met else "no"]
    )

    for cipher, label in (
        ("aes128-gcm", "bulk aes128-gcm, 1 connection, direct-tcpip"),
        ("chacha20-poly1305", "bulk chacha20-poly1305, 1 connection"),
    ):
        point = f"bulk_{cipher}@openssh.com"
        cpu_target = BULK_CPU_TARGET[cipher]
        mb = {s: med(point, "publickey", s, get("total_mb_per_s")) for s in SERVERS}
        gb = {s: med(point, "publickey", s, get("server_core_s_per_gb")) for s in SERVERS}
        rate_x = mb["sshfront"] / mb["sshd"] if mb["sshfront"] and mb["sshd"] else None
        rate_ok = rate_x is not None and rate_x >= BULK_RATE_TARGET
        cpu_ok = gb["sshfront"] is not None and gb["sshfront"] <= cpu_target

        def bulk_cell(s):
            if mb[s] is None:
                return "—"
            ours = s == "sshfront"
            return (
                bold(f"{mb[s]:.0f} MB/s", ours and rate_ok)
                + ", "
                + bold(f"{gb[s]:.2f} core-s/GB", ours and cpu_ok)
            )

        target = f"≥ {BULK_RATE_TARGET:g}× sshd, ≤ {cpu_target:g} core-s/GB"
        parts = ["core-s/GB " + ("yes" if cpu_ok else "no")]
        if rate_x is not None:
            parts.append(
                f"rate {rate_x:.2f}×"
                if rate_ok
                else f"rate {rate_x:.3f}× (misses {BULK_RATE_TARGET:g}× by "
                f"{BULK_RATE_TARGET - rate_x:.3f}×)"
            )
        met = "; ".join(parts)
        rows.append([label] + [bulk_cell(s) for s in SERVERS] + [target, met])

    for auth, label, target in (
        ("publickey", "memory per idle authenticated connection, 1000 held", IDLE_TARGET),
        ("none", "memory per idle connection after SERVICE_ACCEPT only", None),
    ):

        def idle_cell(s):
            pss = med("idle", auth, s, get("server_pss_bytes_per_conn"), "held")
            rss = med("idle", auth, s, get("server_rss_bytes_per_conn"), "held")
            if pss is None:
                return "—"
            text = bold(human_bytes(pss), s == "sshfront" and target and pss <= target)
            if rss is not None and abs(rss - pss) <= 0.01 * pss:
                return text + " (RSS = PSS)"
            return text + f" PSS ({human_bytes(rss)} RSS)"

        ours = med("idle", auth, "sshfront", get("server_pss_bytes_per_conn"), "held")
        if target is None:
            tgt, met = "—", "—"
        else:
            tgt = f"≤ {target // 1024} KiB"
            met = "yes" if ours is not None and ours <= target else "no"
        rows.append([label] + [idle_cell(s) for s in SERVERS] + [tgt, met])

    rows += multi_headline(res)
    for test in big_idle_points(res):

        def big_cell(s, test=test):
            pss = med(test, "publickey", s, get("server_pss_bytes_per_conn"), "held")
            held = med(test, "publickey", s, get("held"), "held")
            if pss is None:
                return "—"
            return f"{human_bytes(pss)} PSS, {held:.0f} held"

        rows.append(
            [f"memory per idle authenticated connection, {test.split('_')[1]} opened"]
            + [big_cell(s) for s in SERVERS]
            + ["—", "—"]
        )

    out = ["| | sshfront | sshd | russh | target | met? |", "|---|---|---|---|---|---|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def multi_headline(res):
    """One row per cipher: aggregate MB/s and core-s/GB at each K (only when measured)."""
    rows = []
    multi = multi_points(res)
    for cipher in ("aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com"):
        tests = [t for t in multi if t.endswith("_" + cipher)]
        if not tests:
            continue
        ks = [t.split("_")[0][len("bulk") :] for t in tests]

        def cell(s, tests=tests):
            parts = []
            for t in tests:
                mb = res.median(t, "publickey", s, get("total_mb_per_s"))
                gb = res.median(t, "publickey", s, get("server_core_s_per_gb"))
                k = t.split("_")[0][len("bulk") :]
                parts.append(
                    f"{k}: —"
                    if mb is None
                    else f"{k}: {mb:.0f} MB/s at {fmt_or_dash(gb, '%.2f')} core-s/GB"
                )
            return "; ".join(parts)

        name = cipher.split("@")[0]
        rows.append(
            [f"bulk {name}, {' and '.join(ks)} connections, aggregate"]
            + [cell(s) for s in SERVERS]
            + ["—", "—"]
        )
    return rows


def replace_block(text, name, lines):
    start = f"<!-- generated: {name} (scripts/bench-tables.py) -->"
    end = "<!-- end generated -->"
    pat = re.compile(re.escape(start) + r"\n.*?" + re.escape(end), re.S)
    if not pat.search(text):
        sys.exit(f"marker '{start}' … '{end}' not found")
    body = start + "\n" + "\n".join(lines).rstrip("\n") + "\n" + end
    return pat.sub(lambda _: body, text, count=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", help="results .jsonl from scripts/compare.sh")
    ap.add_argument("--machine", help="machine.txt to print first (comparison mode)")
    ap.add_argument("--headline", action="store_true", help="print the headline table")
    ap.add_argument("--update", metavar="MD", help="rewrite the generated blocks of this file")
    ap.add_argument("--check", metavar="MD", help="exit 1 unless the generated blocks match")
    ap.add_argument("--floor", action="store_true", help="print handshake CPU over the floor")
    a = ap.parse_args()
    res = Results(load(a.results))
    if a.floor:
        print("\n".join(floor_table(res) or ["no crypto floor in these results"]))
        return
    figdir = os.path.dirname(os.path.abspath(a.results))
    path = a.update or a.check
    if path:
        with open(path) as f:
            old = f.read()
        relto = os.path.dirname(os.path.abspath(path))
        text = replace_block(old, "headline", headline(res))
        text = replace_block(text, "comparison", comparison(res, figdir, relto))
        if a.check:
            if text != old:
                sys.exit(f"{path}: tables differ from {a.results}; rerun with --update")
            return
        with open(path, "w") as f:
            f.write(text)
        return
    if a.headline:
        print("\n".join(headline(res)))
        return
    if a.machine:
        print("```")
        with open(a.machine) as f:
            print(f.read().rstrip())
        print("```\n")
    print("\n".join(comparison(res, figdir)))


if __name__ == "__main__":
    main()
