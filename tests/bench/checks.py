#!/usr/bin/python3
"""checks.py -- CPU per health check, dnsd's watcher against the floor, for
every check type, in one command (issue 16):

  /usr/bin/python3 tests/bench/checks.py            # 3 rounds, ~4 min
  /usr/bin/python3 tests/bench/checks.py --rounds 1 --secs 3 --no-write

Builds tests/bench/bench_health.c against build/libdnsd.a (make first) and
runs, interleaved in rounds (this VM's speed drifts by a third over
minutes; interleaving spreads the drift over every row):

  tcp        10,000 backends at 1 s: floor V0 (socket, connect, epoll,
             SO_LINGER 0, close), floor V3 (one socket per backend, second
             connect, connect(AF_UNSPEC)), dnsd
  http       2,000 backends at 1 s, a request on a kept connection; floor R
             probes the backends in a fixed random order from its second
             round on (dnsd's +-10% jitter moves every probe's turn a little
             each round: in time its sockets are used in no relation to the
             order they were created in, which costs cache and TLB misses in
             the kernel; the first round, in index order, creates them)
  https      2,000 backends at 1 s, a request on a kept TLS connection
  https-rc   500 backends at 1 s, the listener closing every connection:
             connect, resumed TLS handshake, request (fewer backends: at
             2,000 the listener's half of the handshakes fills the second
             core and the checks queue behind it)

Each run measures the checking thread's CPU (schedstat) for --secs seconds
after a warm-up of one and a half intervals. https at 2,000 backends: the
first round is 2,000 full TLS handshakes with both sides on this machine's
two cores, more than one interval's worth, and the row is about the steady
state: dnsd's backends join in 4 steps 1.5 s apart (-r 4; with all at
once, every handshake on the one listener thread finishes after the 1 s
timeout and the run never settles), the floor (which has no timeout) warms
up for 6 s. The table shows per row the
median over rounds of us/check and % of a core, checks/s achieved, and
dnsd's ratio to the floor (the straightforward V0 floor and, for tcp, the
best one we know, V3) computed per round, then the median.

Results go to tests/bench/results/checks-YYYY-MM-DD.{json,txt}, or with
--out NAME to tests/bench/results/NAME.{json,txt} (e.g. checks-2026-12-06-3
for a day's third run: an earlier file is never overwritten silently, the
script refuses to).
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LIBS = "yaml-0.1 libcares libsodium liburcu-qsbr libcurl libmicrohttpd jansson openssl"

# (row name, bench_health arguments); dnsd rows name their floor.
CASES = [
    ("tcp floor V0", ["-n", "10000", "-m", "tcp", "-F", "-V", "0"]),
    ("tcp floor V3", ["-n", "10000", "-m", "tcp", "-F", "-V", "3"]),
    ("tcp dnsd", ["-n", "10000", "-m", "tcp"]),
    ("http floor", ["-n", "2000", "-m", "http", "-F"]),
    ("http floor R", ["-n", "2000", "-m", "http", "-F", "-R"]),
    ("http dnsd", ["-n", "2000", "-m", "http"]),
    ("https floor", ["-n", "2000", "-m", "https", "-F", "-w", "6000"]),
    ("https dnsd", ["-n", "2000", "-m", "https", "-r", "4"]),
    ("https-rc floor", ["-n", "500", "-m", "https", "-F", "-c"]),
    ("https-rc dnsd", ["-n", "500", "-m", "https", "-c"]),
]
RATIOS = [
    ("tcp dnsd", "tcp floor V0"),
    ("tcp dnsd", "tcp floor V3"),
    ("http dnsd", "http floor"),
    ("http dnsd", "http floor R"),
    ("https dnsd", "https floor"),
    ("https-rc dnsd", "https-rc floor"),
]


def build(out):
    subprocess.run(["make", "-C", ROOT, "-s", "build/libdnsd.a"], check=True)
    libs = subprocess.run(["pkg-config", "--libs"] + LIBS.split(), check=True,
                          capture_output=True, text=True).stdout.split()
    subprocess.run([os.environ.get("CC", "cc"), "-std=c11", "-D_GNU_SOURCE", "-O2", "-g",
                    "-I" + os.path.join(ROOT, "dnsd"), "-o", out,
                    os.path.join(HERE, "bench_health.c"),
                    os.path.join(ROOT, "build", "libdnsd.a")] + libs + ["-lpthread", "-lm"],
                   check=True)


def run(binary, args, secs):
    # Bounded: warm-up (at most 2.5 s) + secs + teardown; 60 s is plenty.
    p = subprocess.run([binary, "-j", "-t", str(secs)] + args, capture_output=True, text=True,
                       timeout=secs + 60)
    if p.returncode != 0:
        raise RuntimeError("bench_health %s: %s" % (" ".join(args), p.stderr.strip()))
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=int, default=5)
    ap.add_argument("--only", default="", help="comma-separated row name prefixes")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--note", default="")
    ap.add_argument("--out", default="", help="file name without extension, in results/")
    a = ap.parse_args(argv)
    day = datetime.date.today().isoformat()
    base = os.path.join(HERE, "results", a.out or "checks-%s" % day)
    if not a.no_write and any(os.path.exists(base + e) for e in (".txt", ".json")):
        ap.error("%s.{txt,json} exists: name another with --out" % base)
    binary = os.path.join(ROOT, "build", "bench_health")
    build(binary)
    cases = [c for c in CASES
             if not a.only or any(c[0].startswith(o) for o in a.only.split(","))]
    runs = {name: [] for name, _ in cases}
    for r in range(a.rounds):
        for name, args in cases:
            res = run(binary, args, a.secs)
            runs[name].append(res)
            print("round %d  %-15s %7.2f us/check  %6.2f%% core  %7.1f checks/s of %.0f  "
                  "rss %d kB" % (r + 1, name, res["us_per_check"], res["core_pct"],
                                 res["checks_per_s"], res["expected_per_s"], res["rss_kb"]),
                  flush=True)

    def med(name, key):
        return statistics.median(x[key] for x in runs[name])

    lines = ["CPU per health check: the checking thread's schedstat, median of %d rounds of %d s"
             % (a.rounds, a.secs), "",
             "| row | backends | us/check | % of a core | checks/s (of) | RSS MB (process) |",
             "|---|---|---|---|---|---|"]
    for name, _ in cases:
        x = runs[name][0]
        lines.append("| %s | %d at %d ms | %.2f | %.2f | %.0f (%.0f) | %.0f |" % (
            name, x["backends"], x["interval_ms"], med(name, "us_per_check"),
            med(name, "core_pct"), med(name, "checks_per_s"), x["expected_per_s"],
            med(name, "rss_kb") / 1024))
    ratios = {}
    lines += ["", "| dnsd vs floor | x floor (median of per-round ratios) |", "|---|---|"]
    for num, den in RATIOS:
        if num in runs and den in runs:
            rs = [n["us_per_check"] / d["us_per_check"]
                  for n, d in zip(runs[num], runs[den]) if d["us_per_check"] > 0]
            ratios["%s / %s" % (num, den)] = rs
            lines.append("| %s / %s | %.2f (rounds: %s) |" % (
                num, den, statistics.median(rs), ", ".join("%.2f" % x for x in rs)))
    if a.note:
        lines += ["", "note: " + a.note]
    text = "\n".join(lines) + "\n"
    print()
    print(text, end="")
    if not a.no_write:
        with open(base + ".txt", "w") as f:
            f.write(text)
        with open(base + ".json", "w") as f:
            json.dump({"date": day, "host": platform.node(), "kernel": platform.release(),
                       "nproc": os.cpu_count(), "loadavg": os.getloadavg(),
                       "rounds": a.rounds, "secs": a.secs, "note": a.note,
                       "runs": runs, "ratios": ratios}, f, indent=1)
        print("wrote %s.{txt,json}" % base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
