#!/usr/bin/python3
"""run.py -- `make bench`: runs every benchmark under tests/bench/ in turn
and prints where each one wrote its results.

  failover.py     dead backend -> first answer without it: dnsd, gdnsd, PowerDNS
  checks.py       CPU per health check (tcp, http, https), dnsd vs the floor
  perf.py         CPU per query, max qps, latency: dnsd vs NSD, Knot, gdnsd,
                  PowerDNS and a null responder; both cores; dnsd scaling and
                  reload
  perf.py --paired  the x null and x gdnsd ratios again, from 60 cycles of
                  3 s windows over null, dnsd and gdnsd started once (~12 min)
  path_ir.sh      instructions per request in user space (callgrind): dnsd's
                  UDP thread, handler and process, gdnsd's process

Each benchmark skips (and says so) what the machine lacks; the exit status
is non-zero if any benchmark failed to run.
"""
import datetime
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHES = [
    ("failover", [sys.executable, os.path.join(HERE, "failover.py")]),
    ("health check CPU", [sys.executable, os.path.join(HERE, "checks.py")]),
    ("performance", [sys.executable, os.path.join(HERE, "perf.py")]),
    ("CPU ratios, paired", [sys.executable, os.path.join(HERE, "perf.py"), "--paired", "60",
                            "--secs", "3", "--servers", "null,dnsd-nc,gdnsd", "--scale", "",
                            "--big", "", "--multi", "off",
                            "--note", "paired cycles (make bench): the CPU ratios"]),
    ("instructions per request", ["sh", os.path.join(HERE, "path_ir.sh")]),
]


def main():
    failed = []
    for name, argv in BENCHES:
        print("== %s: %s" % (name, " ".join(argv)), flush=True)
        if argv[0] == "sh":
            # path_ir.sh prints its figures: they are kept as its results.
            p = subprocess.run(argv, capture_output=True, text=True)
            sys.stdout.write(p.stdout + p.stderr)
            rc = p.returncode
            if rc == 0:
                out = os.path.join(HERE, "results", "path-ir-%s.txt"
                                   % datetime.date.today().isoformat())
                with open(out, "a") as f:
                    f.write("# sh tests/bench/path_ir.sh, %s\n%s" % (
                        datetime.datetime.now().isoformat(timespec="seconds"), p.stdout))
        else:
            rc = subprocess.call(argv)
        if rc != 0:
            failed.append(name)
    print("== results in %s" % os.path.join(HERE, "results"))
    if failed:
        print("failed: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
