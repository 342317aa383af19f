#!/usr/bin/python3
"""registry.py -- what one change costs at a million backends.

One config: 100,000 services x 10 backends (compact YAML, unchecked) plus a
service `flip` with two backends on loopback listeners, checked by tcp every
100 ms with fall 1 and rise 1, in a zone open to UPDATE (TSIG).  dnsd runs
with one UDP worker.  Measured:

  start      exec to the first answer, and RSS after it;
  flip       close one flip listener: time until `flip.mesh A` no longer
             holds it (UDP polling every ~1 ms), then reopen it and time
             until it is back; CPU of dnsd's control thread (comm "dnsd")
             per change, from schedstat;
  churn      (--churn-secs) a listener closed and reopened every 20 ms:
             p99 change-to-answer and the control thread's CPU share;
  update     a signed UPDATE adding, then deleting, one backend of a big
             service: time to the acknowledgement and whether the next
             query answers it;
  reload     SIGHUP with the file unchanged: time to the "reloaded" line,
             and whether the flip backend kept its DOWN state;
  scaling    (--dnsperf) CPU per query (all threads, schedstat) at a fixed
             rate for 100 names and for the 1M-backend config.

Writes tests/bench/results/registry-YYYY-MM-DD.{txt,json} unless --no-write.
Run with /usr/bin/python3 (Debian's dnspython); dnsperf from `make bench-deps`.

  /usr/bin/python3 tests/bench/registry.py                  # ~2-3 min
  /usr/bin/python3 tests/bench/registry.py --services 1000  # quick
"""

import argparse
import datetime
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.tsigkeyring
import dns.update

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perf  # noqa: E402  (helpers: processes, CPU, RSS)

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "tests" / "bench" / "results"
SECRET = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
RING = dns.tsigkeyring.from_text({"upd-key.": ("hmac-sha256", SECRET)})
FLIP = ["127.0.91.1", "127.0.91.2"]
now = time.monotonic


class Listener:
    """A TCP listener that accepts and closes; stop() makes connects fail."""

    def __init__(self, addr, port):
        self.addr, self.port, self.sock, self.thread = addr, port, None, None

    def start(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.addr, self.port))
        s.listen(128)
        self.sock = s
        self.thread = threading.Thread(target=self._run, args=(s,), daemon=True)
        self.thread.start()

    def _run(self, s):
        while True:
            try:
                c, _ = s.accept()
                c.close()
            except OSError:
                return

    def stop(self):
        if self.sock:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
            self.sock = None


def write_config(path, nsvc, nbe, port, journal):
    with open(path, "w") as f:
        f.write('keys:\n  - {name: upd-key, algorithm: hmac-sha256, secret: "%s"}\n' % SECRET)
        f.write("zones:\n  - name: mesh\n    ttl: 30\n    ns: [ns1]\n"
                "    update: {keys: [upd-key], journal: \"%s\"}\n"
                "    records:\n      - {name: ns1, type: A, data: 127.0.0.1}\n"
                "    services:\n" % journal)
        f.write("    - {name: flip, ports: {http: %d}, fail-open: false, check: {type: tcp, "
                "interval: 100ms, timeout: 50ms, rise: 1, fall: 1}, backends: [%s]}\n"
                % (port, ", ".join(FLIP)))
        ports = "&p {http: 8080}"
        for k in range(nsvc):
            f.write("    - {name: svc%d, ports: %s, backends: [%s]}\n"
                    % (k, ports, ",".join(perf.short_addr(k, j) for j in range(nbe))))
            ports = "*p"


def a_set(port, name, timeout=0.2):
    q = dns.message.make_query(name, "A")
    try:
        r = dns.query.udp(q, "127.0.0.1", port=port, timeout=timeout)
    except Exception:
        return None
    return {rr.address for rrs in r.answer for rr in rrs}


def wait_until(fn, limit, step=0.001):
    t0 = now()
    while now() - t0 < limit:
        v = fn()
        if v:
            return now() - t0
        time.sleep(step)
    return None


def main_thread_ns(pid):
    """schedstat run time of dnsd's control thread (the main thread)."""
    return int(Path("/proc/%d/task/%d/schedstat" % (pid, pid)).read_text().split()[0])


def pctl(vals, q):
    s = sorted(vals)
    return s[min(len(s) - 1, int(round(q / 100.0 * (len(s) - 1))))] if s else None


def run(args):
    out = {"date": datetime.date.today().isoformat(), "services": args.services,
           "backends_per_service": args.backends}
    tmp = Path(tempfile.mkdtemp(prefix="registry-bench-"))
    port = perf.free_port()
    lport = perf.free_port()
    cfg = tmp / "dnsd.yaml"
    write_config(cfg, args.services, args.backends, lport, tmp / "mesh.journal")
    out["config_bytes"] = cfg.stat().st_size
    listeners = [Listener(a, lport) for a in FLIP]
    for listener in listeners:
        listener.start()
    log = tmp / "dnsd.log"
    t0 = now()
    p = perf.spawn([os.environ.get("DNSD", str(ROOT / "build" / "dnsd")), "-c", str(cfg),
                    "-l", "127.0.0.1:%d" % port, "-w", "1", "-v"], str(log))
    try:
        if wait_until(lambda: a_set(port, "flip.mesh.") == set(FLIP), 120, 0.01) is None:
            raise SystemExit("dnsd did not answer:\n" + perf.tail(str(log)))
        out["start_s"] = round(now() - t0, 2)
        time.sleep(0.5)
        out["rss_mb"] = round(perf.rss_kb([p.pid]) / 1024, 1)
        print("start %.2f s, RSS %.1f MB (%d bytes of YAML)" % (out["start_s"], out["rss_mb"],
                                                               out["config_bytes"]))

        # Health flips.
        downs, ups, cpu = [], [], []
        for i in range(args.flips):
            time.sleep(0.15)
            c0 = main_thread_ns(p.pid)
            listeners[1].stop()
            t = wait_until(lambda: a_set(port, "flip.mesh.") == {FLIP[0]}, 5)
            downs.append(t)
            time.sleep(0.3)
            listeners[1].start()
            t = wait_until(lambda: a_set(port, "flip.mesh.") == set(FLIP), 5)
            ups.append(t)
            time.sleep(0.15)
            cpu.append((main_thread_ns(p.pid) - c0) / 2)
        ok = [d for d in downs if d is not None]
        out["flip_down_ms"] = [round(d * 1000, 1) for d in ok]
        out["flip_up_ms"] = [round(u * 1000, 1) for u in ups if u is not None]
        out["flip_failed"] = len(downs) - len(ok)
        out["control_cpu_us_per_change"] = round(statistics.median(cpu) / 1000, 1)
        print("flip: down after %s ms (median %.1f, max %.1f); up after median %.1f ms; "
              "control thread %.1f us CPU per change" % (
                  out["flip_down_ms"], statistics.median(ok) * 1000, max(ok) * 1000,
                  statistics.median(out["flip_up_ms"]), out["control_cpu_us_per_change"]))

        # Churn: flips as fast as the checks allow, for churn_secs.
        if args.churn_secs:
            lat, c0, w0 = [], main_thread_ns(p.pid), now()
            end = now() + args.churn_secs
            while now() < end:
                listeners[1].stop()
                t = wait_until(lambda: a_set(port, "flip.mesh.") == {FLIP[0]}, 2)
                if t is not None:
                    lat.append(t)
                listeners[1].start()
                t = wait_until(lambda: a_set(port, "flip.mesh.") == set(FLIP), 2)
                if t is not None:
                    lat.append(t)
            share = (main_thread_ns(p.pid) - c0) / 1e9 / (now() - w0)
            out["churn_changes"] = len(lat)
            out["churn_p99_ms"] = round(pctl(lat, 99) * 1000, 1) if lat else None
            out["churn_control_core"] = round(share, 4)
            print("churn: %d changes, p99 change-to-answer %.1f ms, control thread %.2f%% of a core"
                  % (len(lat), out["churn_p99_ms"] or -1, 100 * share))

        # UPDATE: add then delete one backend of a big service.
        svc = "svc%d." % (args.services // 2) + "mesh."
        acks, seen = [], []
        for op, addr in (("add", "10.9.9.9"), ("delete", "10.9.9.9")):
            u = dns.update.UpdateMessage("mesh.", keyring=RING, keyname="upd-key.")
            if op == "add":
                u.add(svc, 30, "A", addr)
            else:
                u.delete(svc, "A", addr)
            t = now()
            r = dns.query.tcp(u, "127.0.0.1", port=port, timeout=30)
            acks.append(round((now() - t) * 1000, 1))
            got = a_set(port, svc, 1.0) or set()
            seen.append((addr in got) == (op == "add") and r.rcode() == dns.rcode.NOERROR)
        out["update_ack_ms"] = acks
        out["update_visible_at_ack"] = all(seen)
        print("update: add acked in %.1f ms, delete in %.1f ms (fsync included); visible at "
              "ack: %s" % (acks[0], acks[1], all(seen)))
        # The same on the checked service: the watcher switches configs too.
        cacks = []
        for op in ("add", "delete"):
            u = dns.update.UpdateMessage("mesh.", keyring=RING, keyname="upd-key.")
            if op == "add":
                u.add("flip.mesh.", 30, "A", "127.0.91.9")
            else:
                u.delete("flip.mesh.", "A", "127.0.91.9")
            t = now()
            r = dns.query.tcp(u, "127.0.0.1", port=port, timeout=30)
            cacks.append(round((now() - t) * 1000, 1))
        out["update_checked_ack_ms"] = cacks
        print("update of the checked service: add acked in %.1f ms, delete in %.1f ms"
              % (cacks[0], cacks[1]))

        # Reload of the unchanged file, with the flip backend held DOWN.
        listeners[1].stop()
        wait_until(lambda: a_set(port, "flip.mesh.") == {FLIP[0]}, 5)
        logpos = log.stat().st_size
        t = now()
        os.kill(p.pid, signal.SIGHUP)
        took = wait_until(lambda: b"reloaded" in log.read_bytes()[logpos:], 120, 0.005)
        out["reload_s"] = round(took, 2) if took is not None else None
        kept = a_set(port, "flip.mesh.") == {FLIP[0]}
        out["reload_state_kept"] = kept
        out["rss_after_reload_mb"] = round(perf.rss_kb([p.pid]) / 1024, 1)
        print("reload (unchanged): %s s; DOWN state kept: %s; RSS %.1f MB"
              % (out["reload_s"], kept, out["rss_after_reload_mb"]))
        listeners[1].start()
    finally:
        perf.stop_proc(p)
        for listener in listeners:
            listener.stop()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--services", type=int, default=100000)
    ap.add_argument("--backends", type=int, default=10)
    ap.add_argument("--flips", type=int, default=10)
    ap.add_argument("--churn-secs", type=float, default=10.0)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    out = run(args)
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        base = RESULTS / ("registry-%s" % out["date"])
        base.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
        lines = ["%s: %s" % (k, v) for k, v in out.items()]
        base.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
