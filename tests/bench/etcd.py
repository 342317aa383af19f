#!/usr/bin/python3
"""etcd.py -- dnsd serving a big etcd prefix: initial sync and RSS, then a
sustained stream of changes.

A 1-member etcd on 127.0.120.x (etcd-server), N instances (default
100,000: 10,000 names x 10 instances, names the YAML does not declare) put
before dnsd starts; dnsd with a small YAML and `etcd:` on that prefix.

  sync     dnsd's start to its "etcd: rebuilt" line, and RSS then, beside the
           RSS of the same dnsd without etcd (the YAML alone);
  replicas two more dnsd on another prefix: 1,000 puts (and a delete of
           every third key) one at a time, each timed until both answer it;
  churn    RATE changes a second (puts of existing names' instances, in
           transactions of RATE/100 every 10 ms) for SECS seconds; every
           100 ms one marker put is timed to the first answer holding it
           (p50/p99); dnsd's CPU over the run (schedstat of every thread).

Writes tests/bench/results/etcd-YYYY-MM-DD.{txt,json} unless --no-write.
  /usr/bin/python3 tests/bench/etcd.py [--instances 100000] [--rate 1000] [--secs 10]
"""

import argparse
import datetime
import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import dns.message
import dns.query

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import perf  # noqa: E402
from etcd_harness import EtcdCluster  # noqa: E402

now = time.monotonic

YAML = """zones:
  - name: mesh
    ns: [ns1]
    records:
      - {name: ns1, type: A, data: 127.0.0.1}
    services:
      - {name: declared, ports: {http: 80}, backends: [10.0.0.1]}
"""


def val(host, port=80):
    return json.dumps({"host": host, "port": port})


def addr(i):
    return "10.%d.%d.%d" % (64 + i // 62500 % 64, i // 250 % 250, 1 + i % 250)


def a_set(port, name):
    try:
        r = dns.query.tcp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=1)
    except Exception:
        return set()
    return {rr.address for rrs in r.answer for rr in rrs}


def start_dnsd(tmp, yaml, port, tag):
    cfg = tmp / ("%s.yaml" % tag)
    cfg.write_text(yaml)
    log = tmp / ("%s.log" % tag)
    p = perf.spawn([os.environ.get("DNSD", str(ROOT / "build" / "dnsd")), "-c", str(cfg),
                    "-l", "127.0.0.1:%d" % port, "-w", "1"], str(log))
    return p, log


def run(args):
    out = {"date": datetime.date.today().isoformat(), "instances": args.instances,
           "rate": args.rate, "secs": args.secs}
    tmp = Path(tempfile.mkdtemp(prefix="etcd-bench-"))
    cluster = EtcdCluster(tmp / "etcd", 1, first_host=121).start()
    try:
        prefix = "/bench/"
        names = max(1, args.instances // 10)
        items = [(prefix + "mesh/svc%d/i%d" % (i % names, i // names), val(addr(i)))
                 for i in range(args.instances)]
        t0 = now()
        cluster.put_many(items)
        out["put_s"] = round(now() - t0, 2)
        print("%d instances (%d names) put in %.1f s" % (args.instances, names, out["put_s"]))

        # The YAML alone, for the RSS to compare with.
        port = perf.free_port()
        p, log = start_dnsd(tmp, YAML, port, "plain")
        while not a_set(port, "declared.mesh."):
            time.sleep(0.05)
        time.sleep(0.3)
        out["rss_yaml_mb"] = round(perf.rss_kb([p.pid]) / 1024, 1)
        perf.stop_proc(p)

        y = YAML + "etcd:\n  endpoints: [%s]\n  prefix: %s\n" % (
            ", ".join(cluster.endpoints()), prefix)
        port = perf.free_port()
        t0 = now()
        p, log = start_dnsd(tmp, y, port, "etcd")
        while b"etcd: rebuilt" not in log.read_bytes():
            if p.poll() is not None or now() - t0 > 120:
                raise SystemExit("dnsd did not sync:\n" + perf.tail(str(log)))
            time.sleep(0.02)
        out["sync_s"] = round(now() - t0, 2)
        assert a_set(port, "svc0.mesh."), "not served"
        time.sleep(0.3)
        out["rss_etcd_mb"] = round(perf.rss_kb([p.pid]) / 1024, 1)
        print("start to synced %.2f s; RSS %.1f MB (YAML alone %.1f MB: +%.1f MB)"
              % (out["sync_s"], out["rss_etcd_mb"], out["rss_yaml_mb"],
                 out["rss_etcd_mb"] - out["rss_yaml_mb"]))

        # Churn.
        stop = threading.Event()
        sent = [0]

        def churn():
            rng = random.Random(1)
            per = max(1, args.rate // 100)
            t = now()
            while not stop.is_set():
                batch = [(prefix + "mesh/svc%d/i%d" % (rng.randrange(names), rng.randrange(10)),
                          val(addr(rng.randrange(args.instances)))) for _ in range(per)]
                cluster.put_many(batch)
                sent[0] += per
                t += 0.01
                d = t - now()
                if d > 0:
                    time.sleep(d)

        c0 = perf.run_ns([p.pid])
        w0 = now()
        th = threading.Thread(target=churn)
        th.start()
        lat = []
        marker_cluster = EtcdCluster.__new__(EtcdCluster)   # its own connections
        marker_cluster.__dict__.update(cluster.__dict__)
        marker_cluster.members = [type(m)(m.name, m.host, m.client_port, m.peer_port, m.data_dir,
                                          m.log_path) for m in cluster.members]
        for m, o in zip(marker_cluster.members, cluster.members):
            m.proc = o.proc
        k = 0
        while now() - w0 < args.secs:
            ip = "10.250.%d.%d" % (k // 250 % 250, 1 + k % 250)
            t1 = now()
            marker_cluster.put(prefix + "mesh/marker/m", val(ip))
            while ip not in a_set(port, "marker.mesh.") and now() - t1 < 5:
                time.sleep(0.002)
            lat.append(now() - t1)
            k += 1
            time.sleep(0.1)
        stop.set()
        th.join()
        wall = now() - w0
        cpu = (perf.run_ns([p.pid]) - c0) / 1e9
        lat.sort()
        out["changes"] = sent[0]
        out["changes_per_s"] = round(sent[0] / wall)
        out["p50_ms"] = round(lat[len(lat) // 2] * 1000, 1)
        out["p99_ms"] = round(lat[max(0, int(len(lat) * 0.99) - 1)] * 1000, 1)
        out["cpu_core"] = round(cpu / wall, 3)
        print("churn: %d changes/s for %.0f s: change to answer p50 %.1f ms, p99 %.1f ms; "
              "dnsd %.1f%% of a core" % (out["changes_per_s"], wall, out["p50_ms"], out["p99_ms"],
                                         100 * out["cpu_core"]))
        perf.stop_proc(p)

        # Two replicas following single changes one at a time: each put
        # (and every third key's delete) timed until both answer it.
        if args.replica_changes:
            rprefix = "/repl/"
            y2 = YAML + "etcd:\n  endpoints: [%s]\n  prefix: %s\n" % (
                ", ".join(cluster.endpoints()), rprefix)
            reps = []
            for tag in ("r1", "r2"):
                rport = perf.free_port()
                rp, rlog = start_dnsd(tmp, y2, rport, tag)
                while b"etcd: rebuilt" not in rlog.read_bytes():
                    time.sleep(0.02)
                reps.append((rp, rport))
            lats = {1: [], 2: []}
            n = 0
            for i in range(args.replica_changes):
                ip = "10.240.%d.%d" % (i // 250 % 250, 1 + i % 250)
                key = rprefix + "mesh/declared/i%d" % i
                t1 = now()
                marker_cluster.put(key, val(ip))
                for j, (rp, rport) in enumerate(reps, 1):
                    while ip not in a_set(rport, "declared.mesh.") and now() - t1 < 5:
                        time.sleep(0.001)
                    lats[j].append(now() - t1)
                n += 1
                if i % 3 == 2:
                    t1 = now()
                    marker_cluster.delete(key)
                    for j, (rp, rport) in enumerate(reps, 1):
                        while ip in a_set(rport, "declared.mesh.") and now() - t1 < 5:
                            time.sleep(0.001)
                        lats[j].append(now() - t1)
                    n += 1
            for j in (1, 2):
                lats[j].sort()
                out["replica%d_p50_ms" % j] = round(lats[j][len(lats[j]) // 2] * 1000, 1)
                out["replica%d_p99_ms" % j] = round(
                    lats[j][max(0, int(len(lats[j]) * 0.99) - 1)] * 1000, 1)
            out["replica_changes"] = n
            print("two replicas, %d puts and deletes one at a time: change to answer p50 %.1f / "
                  "%.1f ms, p99 %.1f / %.1f ms" % (n, out["replica1_p50_ms"], out["replica2_p50_ms"],
                                                  out["replica1_p99_ms"], out["replica2_p99_ms"]))
            for rp, _ in reps:
                perf.stop_proc(rp)
    finally:
        cluster.stop()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=100000)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--secs", type=float, default=10)
    ap.add_argument("--replica-changes", type=int, default=1000,
                    help="puts (plus a delete every third) timed on two replicas; 0: skip")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    out = run(args)
    if not args.no_write:
        (HERE / "results").mkdir(exist_ok=True)
        base = HERE / "results" / ("etcd-%s" % out["date"])
        base.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
        base.with_suffix(".txt").write_text("".join("%s: %s\n" % kv for kv in out.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
