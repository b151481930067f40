#!/usr/bin/env python3
"""Per-module edge coverage of the fuzz targets over their corpora, from libFuzzer's own
-print_coverage=1 report (no coverage rebuild needed).

Usage: scripts/fuzz-coverage.py [TARGET ...]   (run after `cargo fuzz build`; default: all)

For each target it runs the built binary once over fuzz/corpus/TARGET (+ fuzz/seeds/TARGET),
then sums the covered / instrumented edges of every function of this crate by module
(src/connection, src/auth, ...). The last table is the union over all targets: per function,
the best coverage any target reached.
"""
import collections, os, re, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUZZ = os.path.join(ROOT, "fuzz")
BIN = os.path.join(FUZZ, "target", "x86_64-unknown-linux-gnu", "release")
TARGETS = ["packet_open", "wire_msgs", "msg_parsers", "decompress", "server_transport",
           "server_session", "client_session", "server_structured", "client_structured"]
LINE = re.compile(r"^(UN)?COVERED_FUNC: hits: \d+ edges: (\d+)/(\d+) (.*) (\S+):\d+$")


def module(path):
    rel = os.path.relpath(path, ROOT)
    if rel.startswith(".."):
        return None
    parts = rel.split(os.sep)
    if parts[0] != "src":
        return None
    return "src/" + (parts[1] if len(parts) > 2 else parts[1].removesuffix(".rs"))


def run(target):
    dirs = [d for d in (os.path.join(FUZZ, "corpus", target), os.path.join(FUZZ, "seeds", target))
            if os.path.isdir(d)]
    out = subprocess.run([os.path.join(BIN, target), "-runs=0", "-print_coverage=1",
                          "-rss_limit_mb=2048", "-max_len=16384", *dirs],
                         capture_output=True, text=True, cwd=FUZZ).stderr
    funcs = {}
    for line in out.splitlines():
        m = LINE.match(line.strip())
        if m and module(m.group(5)):
            key = (m.group(4), m.group(5))
            cov, total = int(m.group(2)), int(m.group(3))
            old = funcs.get(key, (0, 0))
            funcs[key] = (max(old[0], cov), max(old[1], total))
    return funcs


def table(title, funcs):
    mods = collections.defaultdict(lambda: [0, 0])
    for (_, path), (cov, total) in funcs.items():
        m = mods[module(path)]
        m[0] += cov
        m[1] += total
    print(f"\n{title}\n\n| module | edges covered | edges instrumented | % |\n|---|---:|---:|---:|")
    for name in sorted(mods):
        cov, total = mods[name]
        print(f"| {name} | {cov} | {total} | {100 * cov / max(total, 1):.0f} |")


def main():
    targets = sys.argv[1:] or TARGETS
    union = {}
    for t in targets:
        funcs = run(t)
        table(f"### {t}", funcs)
        for k, (cov, total) in funcs.items():
            old = union.get(k, (0, 0))
            union[k] = (max(old[0], cov), max(old[1], total))
    table("### all targets (union, best per function)", union)


if __name__ == "__main__":
    main()
