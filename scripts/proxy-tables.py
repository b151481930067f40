#!/usr/bin/env python3
"""The session-proxy table of BENCHMARKS.md, from compare-proxy.sh's raw results only.

  scripts/proxy-tables.py RESULTS.jsonl [--machine machine.txt]   # markdown on stdout
  scripts/proxy-tables.py RESULTS.jsonl --check BENCHMARKS.md     # exit 1 if the block differs

Per-session CPU: for sshd directly, the sshd process tree's CPU over the run (sampled by the
script around the harness, children reaped into their parent's figure); for the proxied path,
sshfront's (the harness's --server-pid figure) plus the upstream sshd's tree over the same run.
"What the proxy adds" is sshfront's own share. Medians over rounds; min–max when several.
"""
import argparse
import json
import statistics
import sys

BEGIN = "<!-- proxy-table:begin (scripts/proxy-tables.py) -->"
END = "<!-- proxy-table:end -->"
CPU_TARGET = 0.30
MEM_TARGET = 16 * 1024


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def runs(rows, path, test):
    return [r for r in rows if r["path"] == path and r["test"] == test]


def sshd_cpu(r):
    return r["sshd_cpu_after"] - r["sshd_cpu_before"]


def front_cpu(r):
    return r["result"].get("server_cpu_s") or 0.0


def per_session_ms(r, path):
    """(total, sshfront's part) CPU ms per completed session; None if none completed."""
    ok = r["result"].get("ok") or 0
    if not ok:
        return None
    if path == "direct":
        return 1000 * sshd_cpu(r) / ok, 0.0
    return 1000 * (front_cpu(r) + sshd_cpu(r)) / ok, 1000 * front_cpu(r) / ok


def core_s_per_gb(r, path):
    res = r["result"]
    if not res.get("ok"):
        return None
    gb = res["bytes_per_connection"] * res["connections"] / 1e9
    own = front_cpu(r) if path == "proxied" else 0.0
    return (own + sshd_cpu(r)) / gb, own / gb


def cell(vals, fmt):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "failed", None
    m = statistics.median(vals)
    text = fmt.format(m)
    if len(vals) > 1:
        text += " (" + fmt.format(min(vals)) + "–" + fmt.format(max(vals)) + ")"
    return text, m


def failures(rows):
    out = {}
    for r in rows:
        for k, v in (r["result"].get("failures") or {}).items():
            out[k] = out.get(k, 0) + v
        if "error" in r["result"]:
            out["harness_error"] = out.get("harness_error", 0) + 1
    return out


def throughput_rows(lines, rows, test, what):
    """MB/s and server core-s/GB rows of one transfer test, direct against proxied."""
    d, p = runs(rows, "direct", test), runs(rows, "proxied", test)
    dv = cell([r["result"].get("total_mb_per_s") or None for r in d], "{:.0f}")[0]
    pv = cell([r["result"].get("total_mb_per_s") or None for r in p], "{:.0f}")[0]
    lines.append(f"| {what} | MB/s | {dv} | {pv} | |")
    dc = [core_s_per_gb(r, "direct") for r in d]
    pc = [core_s_per_gb(r, "proxied") for r in p]
    dt = cell([x and x[0] for x in dc], "{:.2f}")[0]
    pt = cell([x and x[0] for x in pc], "{:.2f}")[0]
    ft = cell([x and x[1] for x in pc], "{:.2f}")[0]
    lines.append(f"| {what} | server core-s/GB | {dt} | {pt} | {ft} |")


def block(rows):
    lines = []
    checks = []
    lines.append("| load | figure | sshd directly | sshfront → sshd (total) | of which sshfront |")
    lines.append("|---|---|---|---|---|")
    for c in (1, 16):
        test = f"handshake_c{c}"
        d, p = runs(rows, "direct", test), runs(rows, "proxied", test)
        for q in ("p50", "p99"):
            dv = cell([(r["result"].get("latency_ms") or {}).get(q) for r in d], "{:.1f}")[0]
            pv = cell([(r["result"].get("latency_ms") or {}).get(q) for r in p], "{:.1f}")[0]
            lines.append(f"| exec `true`, C={c} | latency {q}, ms | {dv} | {pv} | |")
        dv = cell([r["result"].get("handshakes_per_s") for r in d], "{:.1f}")[0]
        pv = cell([r["result"].get("handshakes_per_s") for r in p], "{:.1f}")[0]
        lines.append(f"| exec `true`, C={c} | sessions/s | {dv} | {pv} | |")
        dcpu = [per_session_ms(r, "direct") for r in d]
        pcpu = [per_session_ms(r, "proxied") for r in p]
        dt, dm = cell([x and x[0] for x in dcpu], "{:.1f}")
        pt, _ = cell([x and x[0] for x in pcpu], "{:.1f}")
        ft, fm = cell([x and x[1] for x in pcpu], "{:.2f}")
        lines.append(f"| exec `true`, C={c} | server CPU ms per session | {dt} | {pt} | {ft} |")
        if dm and fm is not None:
            checks.append((f"handshake CPU, C={c}", fm / dm, CPU_TARGET, "of sshd's per-session CPU"))
    throughput_rows(lines, rows, "bulk_direct_tcpip", "direct-tcpip bulk, 1 connection")
    for d_ in ("put", "get"):
        d, p = runs(rows, "direct", f"sftp_{d_}"), runs(rows, "proxied", f"sftp_{d_}")
        if not d and not p:
            continue  # results from before the sftp runs were added
        mb = max([r["result"]["bytes_per_connection"] for r in d + p]) // 2**20
        throughput_rows(lines, rows, f"sftp_{d_}", f"sftp {d_}, {mb} MiB file")
    d, p = runs(rows, "direct", "idle"), runs(rows, "proxied", "idle")
    n = max([r["result"].get("held") or 0 for r in d + p] or [0])
    dv = cell([(r["result"].get("server_pss_bytes_per_conn") or 0) / 1024 or None for r in d],
              "{:.1f}")[0]
    pr = cell([(r["result"].get("server_rss_bytes_per_conn") or 0) / 1024 or None for r in p],
              "{:.1f}")[0]
    pp, pm = cell([(r["result"].get("server_pss_bytes_per_conn") or 0) / 1024 or None for r in p],
                  "{:.1f}")
    lines.append(f"| idle, {n} sessions | KiB per session, PSS | {dv} (sshd's tree) | "
                 f"(sshd's not counted) | {pp} |")
    lines.append(f"| idle, {n} sessions | KiB per session, RSS | | | {pr} |")
    if pm is not None:
        checks.append(("idle proxied session", pm * 1024 / MEM_TARGET, 1.0, "of 16 KiB (PSS)"))
    bad = failures(rows)
    lines.append("")
    if bad:
        lines.append("Failed runs or connections: " +
                     ", ".join(f"{k}={v}" for k, v in sorted(bad.items())) + ".")
    else:
        lines.append("No failed connections in any run.")
    lines.append("")
    lines.append("Targets (≤ 30% added CPU per session, ≤ 16 KiB per idle proxied session):")
    lines.append("")
    for name, ratio, limit, what in checks:
        met = "met" if ratio <= limit else "MISSED"
        if limit == 1.0:
            lines.append(f"- {name}: {ratio * 16:.1f} KiB = {ratio:.0%} {what} — **{met}**")
        else:
            lines.append(f"- {name}: sshfront adds {ratio:.0%} {what} — **{met}**")
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--machine", help="machine.txt to print above the table")
    ap.add_argument("--check", metavar="MD", help="exit 1 unless MD holds the same block")
    a = ap.parse_args()
    lines = [BEGIN] + block(load(a.results)) + [END]
    if a.check:
        text = open(a.check).read()
        if BEGIN not in text or END not in text:
            print(f"{a.check}: no proxy table block", file=sys.stderr)
            sys.exit(1)
        start = text.index(BEGIN)
        have = text[start:text.index(END, start) + len(END)]
        if have != "\n".join(lines):
            print(f"{a.check}: the session-proxy table differs from {a.results}; regenerate it "
                  f"with scripts/proxy-tables.py", file=sys.stderr)
            sys.exit(1)
        return
    if a.machine:
        print("```")
        print(open(a.machine).read().rstrip())
        print("```")
        print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
