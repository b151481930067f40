#!/usr/bin/env python3
"""Plots of a scripts/compare.sh run, from its raw results.jsonl only (needs matplotlib;
compare.sh runs it with target/plot-venv's python).

  scripts/bench-plots.py RESULTS.jsonl [--out DIR]     # DIR defaults to RESULTS' directory

Writes, when the run has the data for them:
  handshake-cdf.png  latency CDF per server (publickey auth; one panel per concurrency; the
                     CDF of the median round, chosen by p50)
  bulk.png           MB/s and server core-s/GB per server, for 1, 8 and 64 connections and
                     both ciphers (bars: median over rounds; whiskers: min–max)
  memory.png         server PSS per idle connection per server and idle point (log scale)
scripts/bench-tables.py links the files it finds next to the results in its tables.
"""

import argparse
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
bt = __import__("bench-tables")

COLOURS = {"sshfront": "#1f77b4", "sshd": "#d62728", "russh": "#2ca02c"}


def ok_runs(res, test, auth, server, ok_key="ok"):
    return [r for r in res.runs(test, auth, server) if r.get(ok_key)]


def handshake_cdf(res, plt, out):
    points = [p for p in bt.HANDSHAKE_POINTS if any(r["test"] == p for r in res.rows)]
    if not points:
        return None
    fig, axes = plt.subplots(1, len(points), figsize=(5 * len(points), 4.2), squeeze=False)
    drawn = False
    for ax, point in zip(axes[0], points):
        for s in bt.SERVERS:
            runs = [r for r in ok_runs(res, point, "publickey", s) if r.get("latency_cdf_ms")]
            if not runs:
                continue
            runs.sort(key=lambda r: r["latency_ms"]["p50"] or 0)
            cdf = runs[len(runs) // 2]["latency_cdf_ms"]
            ax.plot([p[1] for p in cdf], [p[0] for p in cdf], label=s, color=COLOURS[s])
            drawn = True
        ax.set_xscale("log")
        ax.set_xlabel("connect to USERAUTH_SUCCESS, ms (log)")
        ax.set_ylabel("fraction of handshakes")
        ax.set_title(f"publickey handshakes, C={point.split('_c')[1]}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="lower right")
    if not drawn:
        plt.close(fig)
        return None
    return save(fig, plt, out, "handshake-cdf.png")


def bulk_bars(res, plt, out):
    # (label, test) for 1 connection and each K present, per cipher.
    groups = []
    for cipher in ("aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com"):
        name = cipher.split("@")[0]
        if any(r["test"] == f"bulk_{cipher}" for r in res.rows):
            groups.append((f"{name}\n1 conn", f"bulk_{cipher}"))
        for t in bt.multi_points(res):
            if t.endswith("_" + cipher):
                k = re.match(r"bulk(\d+)_", t).group(1)
                groups.append((f"{name}\n{k} conns", t))
    if not groups:
        return None
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 2.1 * len(groups)), 8), sharex=True)
    width = 0.8 / len(bt.SERVERS)
    metrics = [
        (axes[0], bt.get("total_mb_per_s"), "MB/s (aggregate)"),
        (axes[1], bt.get("server_core_s_per_gb"), "server core-s/GB"),
    ]
    for ax, key, label in metrics:
        for i, s in enumerate(bt.SERVERS):
            xs, meds, lo, hi = [], [], [], []
            for g, (_, test) in enumerate(groups):
                vals = res.values(test, "publickey", s, key)
                if not vals:
                    continue
                m = statistics.median(vals)
                xs.append(g + (i - (len(bt.SERVERS) - 1) / 2) * width)
                meds.append(m)
                lo.append(m - min(vals))
                hi.append(max(vals) - m)
            if xs:
                ax.bar(xs, meds, width, yerr=[lo, hi], capsize=3, label=s, color=COLOURS[s])
        ax.set_ylabel(label)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].legend()
    axes[0].set_title("Bulk through direct-tcpip to the harness's sink (publickey auth)")
    axes[1].set_xticks(range(len(groups)))
    axes[1].set_xticklabels([g[0] for g in groups])
    return save(fig, plt, out, "bulk.png")


def memory_bars(res, plt, out):
    points = []
    for auth in ("publickey", "none"):
        if any(r["test"] == "idle" and r["auth"] == auth for r in res.rows):
            label = "1000 idle, authenticated" if auth == "publickey" else "1000 idle, KEX only"
            points.append((label, "idle", auth))
    for t in bt.big_idle_points(res):
        points.append((f"{t.split('_')[1]} idle, authenticated", t, "publickey"))
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(max(7, 2.4 * len(points)), 4.5))
    width = 0.8 / len(bt.SERVERS)
    key = bt.get("server_pss_bytes_per_conn")
    labels = [p[0] for p in points]
    for i, s in enumerate(bt.SERVERS):
        xs, meds = [], []
        for g, (_, test, auth) in enumerate(points):
            vals = [v for v in res.values(test, auth, s, key, "held") if v > 0]
            if vals:
                xs.append(g + (i - (len(bt.SERVERS) - 1) / 2) * width)
                meds.append(statistics.median(vals) / 1024)
            elif res.runs(test, auth, s):
                # Measured for others but skipped or failed for this one (sshd at 20,000).
                labels[g] += f"\n({s}: not measured)"
        if xs:
            bars = ax.bar(xs, meds, width, label=s, color=COLOURS[s])
            ax.bar_label(
                bars, labels=[f"{m:.1f}" if m < 100 else f"{m:.0f}" for m in meds], fontsize=8
            )
    ax.set_yscale("log")
    ax.set_ylim(bottom=1)
    ax.set_ylabel("server PSS per connection, KiB (log)")
    ax.set_xticks(range(len(points)))
    ax.set_xticklabels(labels)
    ax.set_title("Server memory per idle connection (fresh server each)")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend()
    return save(fig, plt, out, "memory.png")


def save(fig, plt, out, name):
    path = os.path.join(out, name)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--out", help="directory for the PNGs (default: the results' directory)")
    a = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = bt.Results(bt.load(a.results))
    out = a.out or os.path.dirname(os.path.abspath(a.results))
    for f in (handshake_cdf, bulk_bars, memory_bars):
        path = f(res, plt, out)
        if path:
            print(path, file=sys.stderr)


if __name__ == "__main__":
    main()
