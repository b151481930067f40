#!/usr/bin/env python3
"""Table and plots for the attack benchmark, from the raw files of scripts/compare.sh --attack
(DIR/<server>-<mode>.jsonl: one JSON line per second from `bench-harness attack`, then a
summary line), so no figure is typed by hand.

  scripts/attack-tables.py DIR [--machine machine.txt]   # markdown table on stdout
  scripts/attack-tables.py DIR --plot OUTDIR              # OUTDIR/attack-<mode>.png (matplotlib)
  scripts/attack-tables.py DIR --check BENCHMARKS.md      # exit 1 unless the table is in the file

Each row is one run: the legitimate client's publickey login latency over the whole attack
(p50, p99, max), its successes and failures, and what happened to the attacker's connections.
"""

import argparse
import json
import os
import sys

SERVERS = ["sshfront", "sshd"]
# preauth-10k: preauth-idle with 10,000 connections held (sshfront only), for server memory.
MODES = ["spray", "kex-flood", "preauth-idle", "slowloris", "preauth-10k"]
PREAUTH_RSS_TARGET = 60 * 2**20  # bytes for 10,000 idle pre-auth connections (issue 10)


def load(path):
    with open(path) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    seconds = [l for l in lines if l.get("type") == "second"]
    summary = next((l for l in lines if l.get("type") == "summary"), None)
    return seconds, summary


def runs(d):
    for mode in MODES:
        for s in SERVERS:
            p = os.path.join(d, f"{s}-{mode}.jsonl")
            if os.path.exists(p):
                yield mode, s, p


def fmt(v, digits=1):
    if v is None:
        return "–"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:.{digits}f}"
    return str(int(v))


def table(d, machine):
    out = []
    if machine:
        with open(machine) as f:
            out.append("```\n" + f.read().rstrip() + "\n```\n")
    out.append(
        "| attack | server | attacker conns | legit ok | legit failed | p50 ms | p99 ms | max ms "
        "| attacker started | refused at accept | disconnected | auth failures | completed "
        "| connect errors | peak server PSS MiB |"
    )
    out.append("|" + "---|" * 15)
    for mode, s, p in runs(d):
        seconds, sm = load(p)
        if sm is None:
            out.append(f"| {mode} | {s} | (no summary: run failed) |" + " |" * 12)
            continue
        peak_pss = max((x.get("server_pss") or 0 for x in seconds), default=0)
        lat = sm.get("latency_ms") or {}
        a = sm.get("attack") or {}
        cells = [
            mode,
            s,
            fmt(sm.get("concurrency")),
            fmt(sm.get("legit_ok")),
            fmt(sm.get("legit_failed")),
            fmt(lat.get("p50"), 2),
            fmt(lat.get("p99"), 2),
            fmt(lat.get("max"), 2),
            fmt(a.get("started")),
            fmt(a.get("refused_at_accept")),
            fmt(a.get("disconnected")),
            fmt(a.get("auth_failures")),
            fmt(a.get("completed")),
            fmt(a.get("connect_errors")),
            fmt(peak_pss / 2**20 if peak_pss else None),
        ]
        out.append("| " + " | ".join(cells) + " |")
    out += preauth_memory(d)
    return "\n".join(out) + "\n"


def preauth_memory(d):
    """The server's memory for 10,000 idle pre-auth connections: RSS at the second the most
    attacker connections were open, less RSS before the attack; empty without that run."""
    p = os.path.join(d, "sshfront-preauth-10k.jsonl")
    if not os.path.exists(p):
        return []
    seconds, sm = load(p)
    out = ["", "10,000 idle pre-auth connections: server memory (sshfront)", ""]
    pts = [x for x in seconds if isinstance(x.get("server_rss"), (int, float))]
    before = (sm or {}).get("server_rss_before")
    if not pts or not isinstance(before, (int, float)):
        return out + ["(not measured: no memory samples or no summary)"]
    peak = max(pts, key=lambda x: ((x.get("attack") or {}).get("open") or 0, x["server_rss"]))
    held = (peak.get("attack") or {}).get("open") or 0
    delta = peak["server_rss"] - before
    met = "yes" if held >= 10000 and delta <= PREAUTH_RSS_TARGET else "no"
    per = f"{delta / held:.0f}" if held else "–"
    out += [
        "| held (most open at once) | RSS before, MiB | RSS then, MiB | added RSS, MiB "
        "| bytes per connection | target | met? |",
        "|---|---|---|---|---|---|---|",
        f"| {held} | {before / 2**20:.1f} | {peak['server_rss'] / 2**20:.1f} "
        f"| {delta / 2**20:.1f} | {per} | ≤ 60 MiB for 10,000 | {met} |",
    ]
    return out


def plot(d, outdir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    for mode in MODES:
        series = [(s, p) for m, s, p in runs(d) if m == mode]
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for s, p in series:
            seconds, _ = load(p)
            for key, style in (("p50_ms", "-"), ("p99_ms", "--")):
                pts = [(x["t"], x[key]) for x in seconds if x.get(key) is not None]
                if pts:
                    ax.plot(*zip(*pts), style, marker=".", label=f"{s} {key[:3]}")
        ax.set_yscale("log")
        ax.set_xlabel("seconds into the attack")
        ax.set_ylabel("legitimate publickey login latency (ms, log)")
        ax.set_title(f"{mode} from 127.0.0.2, logins from 127.0.0.1")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        path = os.path.join(outdir, f"attack-{mode}.png")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        made.append(path)
    for m in made:
        print(m, file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--machine")
    ap.add_argument("--plot", metavar="OUTDIR")
    ap.add_argument("--check", metavar="FILE")
    a = ap.parse_args()
    if a.check:
        with open(a.check) as f:
            text = f.read()
        if table(a.dir, None) not in text:
            sys.stderr.write(f"{a.check}: the attack table differs from {a.dir}; regenerate it\n")
            sys.exit(1)
    elif a.plot:
        plot(a.dir, a.plot)
    else:
        sys.stdout.write(table(a.dir, a.machine))


if __name__ == "__main__":
    main()
