#!/usr/bin/env python3
"""Summary and plot of a scripts/soak.sh run, from its raw files only.

  scripts/soak-report.py DIR     # reads DIR/soak.csv and DIR/loads.jsonl, writes DIR/soak.png
  scripts/soak-report.py DIR --check BENCHMARKS.md   # exit 1 unless the summary is in the file

Warm-up is the first fifth of the samples; "RSS spread" is (max - min) / median after it.
Bulk runs through the harness's own sink must deliver every byte (sink_complete); runs to the
resetting or stalling backends are expected to fail and are only counted.
"""

import csv
import json
import os
import statistics
import sys


def main():
    d = sys.argv[1]
    check = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--check" else None
    with open(os.path.join(d, "soak.csv")) as f:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    loads = []
    p = os.path.join(d, "loads.jsonl")
    if os.path.exists(p):
        with open(p) as f:
            for line in f:
                try:
                    loads.append(json.loads(line))
                except ValueError:
                    loads.append({"load": "unparsable"})
    out = [f"samples: {len(rows)} (every 10 s)"]
    if rows:
        warm = rows[len(rows) // 5 :] or rows
        rss = [r["rss_kb"] / 1024 for r in warm]
        med = statistics.median(rss)
        out.append(
            f"RSS after warm-up: median {med:.1f} MiB, min {min(rss):.1f}, max {max(rss):.1f}, "
            f"spread {(max(rss) - min(rss)) / med * 100 if med else 0:.1f}%"
        )
        out.append(
            f"open fds: first sample {rows[0]['fds']:.0f}, after warm-up {warm[0]['fds']:.0f}, "
            f"last {rows[-1]['fds']:.0f}, max {max(r['fds'] for r in rows):.0f}"
        )
        out.append(
            f"CPU: mean {statistics.mean(r['cpu_pct'] for r in rows[:-1] or rows):.1f}% of one core"
        )
    counts = {}
    for l in loads:
        counts[l.get("load", "?")] = counts.get(l.get("load", "?"), 0) + 1
    out.append("harness runs: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    bulk = [l["result"] for l in loads if l.get("load") == "bulk" and "result" in l]
    lost = [r for r in bulk if r.get("sink_complete") is not True]
    out.append(f"bulk runs to the harness sink: {len(bulk)}, with bytes missing or failed: {len(lost)}")
    if check:
        with open(check) as f:
            if "\n".join(out) not in f.read():
                sys.stderr.write(f"{check}: the soak summary differs from {d}; regenerate it\n")
                sys.exit(1)
        return
    print("\n".join(out))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
    t = [r["t_s"] / 60 for r in rows]
    for ax, key, label, scale in (
        (axes[0], "rss_kb", "RSS (MiB)", 1 / 1024),
        (axes[1], "fds", "open fds", 1),
        (axes[2], "cpu_pct", "CPU (% of a core)", 1),
    ):
        ax.plot(t, [r[key] * scale for r in rows], marker=".")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("minutes")
    axes[0].set_title("sshfront under the soak's mixed load")
    fig.tight_layout()
    fig.savefig(os.path.join(d, "soak.png"), dpi=100)


if __name__ == "__main__":
    main()
