#!/usr/bin/python3
"""failover.py -- how long a dead backend stays in DNS answers: dnsd against
gdnsd (multifo + tcp_connect) and PowerDNS Authoritative (LUA ifportup).

For each server, in one run: three TCP backends listen on 127.0.0.11/12/13 at
one port; the server health-checks them and answers user-service.mesh A with
the healthy ones.  We query it over UDP every ~2 ms, close 127.0.0.12's
listening socket at T0 (new connects are refused from then on), and record

  failover  time from T0 to the first answer without 127.0.0.12; for the
            next --verify seconds no answer may contain it again (a "flap");
  recovery  time from reopening the listener to the first answer that holds
            127.0.0.12 again;
  errors    timeouts (no reply within 0.2 s), SERVFAIL, other rcodes,
            answers missing a live backend.

Runs --runs times per server, with a random delay before each T0 so the kill
lands at a random phase of the check interval.  Writes
tests/bench/results/failover-<date>.json and .txt.  A peer that is not
installed is skipped, never fatal.

Needs dnspython: run with /usr/bin/python3 (Debian's python3-dnspython).
Standalone: /usr/bin/python3 tests/bench/failover.py [--runs N] [--servers ...]
Imported:   failover.main(["--runs", "3"]) returns the exit status.
"""

import argparse
import atexit
import datetime
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

try:
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype
    import dns.exception
    import dns.version
except ImportError:  # pragma: no cover - reported by main()
    dns = None

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "tests" / "bench" / "results"

BACKENDS = ("127.0.0.11", "127.0.0.12", "127.0.0.13")
DEAD = "127.0.0.12"
QNAME = "user-service.mesh."
QUERY_GAP = 0.002          # seconds between query sends
QUERY_TIMEOUT = 0.2        # a reply later than this counts as a timeout
WAIT_MAX = 30.0            # bound on every wait (warm-up, failover, recovery)

now = time.monotonic


# ---------------------------------------------------------------- processes

_procs = []                # every Popen we started, for cleanup by pid


def _stop_proc(p, grace=3.0):
    """SIGTERM, then SIGKILL after grace seconds; by pid, only ours."""
    if p.poll() is not None:
        return p.returncode
    try:
        os.kill(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        return p.poll()
    try:
        return p.wait(grace)
    except subprocess.TimeoutExpired:
        try:
            os.kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return p.wait(5)


def _cleanup_all():
    while _procs:
        _stop_proc(_procs.pop())


atexit.register(_cleanup_all)


def _spawn(argv, logpath, env=None):
    log = open(logpath, "wb")
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                             stderr=subprocess.STDOUT, env=env)
    finally:
        log.close()
    _procs.append(p)
    return p


def _tail(path, n=15):
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + line for line in lines[-n:])


# ---------------------------------------------------------------- ports

def free_udp_tcp_port(host="127.0.0.1"):
    """A port free for both UDP and TCP on host (bind to 0, then check)."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind((host, 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind((host, port))
        except OSError:
            continue
        finally:
            u.close()
            t.close()
        return port
    raise RuntimeError("no free port on " + host)


def free_backend_port():
    """One TCP port free on all of BACKENDS."""
    for _ in range(50):
        socks = []
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((BACKENDS[0], 0))
            port = s.getsockname()[1]
            for addr in BACKENDS[1:]:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind((addr, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no port free on all backend addresses")


# ---------------------------------------------------------------- backends

class Backend:
    """A TCP listener that accepts and closes, on its own thread.  stop()
    shuts the listening socket down, so later connects are refused."""

    def __init__(self, addr, port):
        self.addr, self.port = addr, port
        self.sock = None
        self.thread = None
        self.accepts = []      # monotonic times of accepted connections (checks)

    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.addr, self.port))
        s.listen(128)
        self.sock = s
        self.thread = threading.Thread(target=self._loop, args=(s,), daemon=True,
                                       name="backend-" + self.addr)
        self.thread.start()

    def _loop(self, s):
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return          # shut down by stop()
            self.accepts.append(now())
            c.close()

    def stop(self):
        if self.sock is None:
            return
        # shutdown() on a listening socket wakes accept() and moves the
        # socket out of LISTEN at once: from here a SYN gets a RST.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(2)
        self.sock.close()
        self.sock = None


# ---------------------------------------------------------------- querying

class Counters:
    def __init__(self):
        self.queries = 0
        self.timeouts = 0
        self.servfail = 0
        self.other_rcode = 0
        self.neterr = 0
        self.empty = 0
        self.rtt_sum = 0.0     # seconds, over answered queries
        self.rtt_max = 0.0
        self.answered = 0

    def errors(self):
        return self.timeouts + self.servfail + self.other_rcode + self.neterr

    def as_dict(self):
        return dict(queries=self.queries, timeouts=self.timeouts, servfail=self.servfail,
                    other_rcode=self.other_rcode, neterr=self.neterr, empty=self.empty,
                    rtt_mean_ms=round(self.rtt_sum / self.answered * 1000, 3)
                    if self.answered else None,
                    rtt_max_ms=round(self.rtt_max * 1000, 3))

    def add(self, other):
        for k in vars(self):
            if k == "rtt_max":
                self.rtt_max = max(self.rtt_max, other.rtt_max)
            else:
                setattr(self, k, getattr(self, k) + getattr(other, k))


def ask(port, counters):
    """One UDP query; returns the set of A addresses, or None on any error."""
    q = dns.message.make_query(QNAME, "A")
    counters.queries += 1
    t = now()
    try:
        r = dns.query.udp(q, "127.0.0.1", port=port, timeout=QUERY_TIMEOUT)
    except dns.exception.Timeout:
        counters.timeouts += 1
        return None
    except (OSError, dns.exception.DNSException):
        counters.neterr += 1
        return None
    rtt = now() - t
    counters.rtt_sum += rtt
    counters.rtt_max = max(counters.rtt_max, rtt)
    counters.answered += 1
    rc = r.rcode()
    if rc == dns.rcode.SERVFAIL:
        counters.servfail += 1
        return None
    if rc != dns.rcode.NOERROR:
        counters.other_rcode += 1
        return None
    addrs = set()
    for rrset in r.answer:
        if rrset.rdtype == dns.rdatatype.A:
            addrs.update(rd.address for rd in rrset)
    if not addrs:
        counters.empty += 1
    return addrs


def paced(port, counters, deadline):
    """Yields (t_recv, addrs) for queries sent every QUERY_GAP until deadline."""
    nxt = now()
    while True:
        t = now()
        if t >= deadline:
            return
        if nxt > t:
            time.sleep(nxt - t)
        nxt += QUERY_GAP
        addrs = ask(port, counters)
        yield now(), addrs
        if nxt < now() - 0.05:      # after a timeout: don't burst to catch up
            nxt = now()


def wait_all_up(port, counters, limit=WAIT_MAX, settle=0.3):
    """Waits until answers hold every backend, then for settle seconds more
    with every answer holding them.  Returns seconds waited or None."""
    t0 = now()
    ok_since = None
    for t, addrs in paced(port, counters, t0 + limit):
        if addrs is not None and set(BACKENDS) <= addrs:
            if ok_since is None:
                ok_since = t
            if t - ok_since >= settle:
                return ok_since - t0
        else:
            ok_since = None
    return None


# ---------------------------------------------------------------- one trial

def trial(port, dead_backend, interval_s, verify_s, rng):
    """Kill DEAD at a random phase, time its removal, check it stays out,
    bring it back and time its return."""
    c = Counters()
    res = dict(failover_ms=None, recovery_ms=None, flaps=0, flap_after_ms=[],
               missing_live=0, pre_missing=0, last_check_before_kill_ms=None,
               first_check_after_restart_ms=None)
    # Steady state first, for a random part of the check interval, so T0
    # falls at a random phase of the checker.
    for _, addrs in paced(port, c, now() + 0.2 + rng.uniform(0, interval_s)):
        if addrs is not None and DEAD not in addrs:
            res["pre_missing"] += 1
    live = set(BACKENDS) - {DEAD}
    t0 = now()
    dead_backend.stop()
    if dead_backend.accepts:
        res["last_check_before_kill_ms"] = round((t0 - dead_backend.accepts[-1]) * 1000, 1)
    first = None
    for t, addrs in paced(port, c, t0 + WAIT_MAX):
        if addrs is None:
            continue
        if addrs and not live <= addrs:
            res["missing_live"] += 1
        if first is None:
            if addrs and DEAD not in addrs:
                first = t
                res["failover_ms"] = round((t - t0) * 1000, 1)
                break
    if first is not None:
        for t, addrs in paced(port, c, first + verify_s):
            if addrs is None:
                continue
            if addrs and not live <= addrs:
                res["missing_live"] += 1
            if DEAD in addrs:
                res["flaps"] += 1
                if len(res["flap_after_ms"]) < 10:
                    res["flap_after_ms"].append(round((t - t0) * 1000, 1))
    # Again a random phase, or the restart would be locked to the check that
    # found the backend down.
    for _ in paced(port, c, now() + rng.uniform(0, interval_s)):
        pass
    dead_backend.accepts = []
    t1 = now()
    dead_backend.start()
    for t, addrs in paced(port, c, t1 + WAIT_MAX):
        if addrs is not None and DEAD in addrs:
            res["recovery_ms"] = round((t - t1) * 1000, 1)
            break
    # The check's connect completes in the kernel; our accept thread may
    # not have had the GIL yet.
    time.sleep(0.05)
    if dead_backend.accepts:
        res["first_check_after_restart_ms"] = round((dead_backend.accepts[0] - t1) * 1000, 1)
    res["counters"] = c.as_dict()
    return res, c


# ---------------------------------------------------------------- servers

class Peer:
    name = "?"
    interval_ms = 0
    threshold = 0          # failed checks in a row before a backend is dropped
    rise = 0               # good checks in a row before it is back
    notes = ""

    def __init__(self, tmp, port, bport):
        self.tmp, self.port, self.bport = Path(tmp), port, bport
        self.proc = None
        self.log = self.tmp / (self.name + ".log")

    def missing(self):
        """None if runnable, else why not."""
        return None

    def version(self):
        return ""

    def start(self):
        self.proc = _spawn(self.argv(), self.log)

    def stop(self):
        if self.proc is not None:
            _stop_proc(self.proc)
            if self.proc in _procs:
                _procs.remove(self.proc)
            self.proc = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def settings(self):
        return dict(interval_ms=self.interval_ms, down_threshold=self.threshold,
                    up_threshold=self.rise, notes=self.notes)


def _dpkg_version(pkg):
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


class Dnsd(Peer):
    name = "dnsd"
    interval_ms = 100
    threshold = 2
    rise = 2
    notes = "check tcp interval 100ms timeout 50ms rise 2 fall 2; ttl 1; -w 1"

    def binary(self):
        return os.environ.get("DNSD") or str(ROOT / "build" / "dnsd")

    def missing(self):
        b = self.binary()
        if not (os.path.isfile(b) and os.access(b, os.X_OK)):
            return "dnsd not built (%s is not an executable file; run make)" % b
        return None

    def version(self):
        try:
            out = subprocess.run([self.binary(), "-V"], capture_output=True, text=True,
                                 timeout=10)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError, IndexError):
            return ""

    def argv(self):
        cfg = self.tmp / "dnsd.yaml"
        cfg.write_text(
            "listen: [127.0.0.1:%d]\n"
            "zones:\n"
            "  - name: mesh\n"
            "    services:\n"
            "      - name: user-service\n"
            "        ttl: 1\n"
            "        ports: {http: %d}\n"
            "        check: {type: tcp, interval: 100ms, timeout: 50ms, rise: 2, fall: 2}\n"
            "        backends: [%s]\n" % (self.port, self.bport, ", ".join(BACKENDS)))
        return [self.binary(), "-c", str(cfg), "-l", "127.0.0.1:%d" % self.port, "-w", "1"]


class Gdnsd(Peer):
    name = "gdnsd"
    # gdnsd 3.8.1 rejects interval < 2 ("Value out of range (2, 3600)"; the
    # man page says min 1), wants integer seconds, and timeout < interval.
    interval_ms = 2000
    threshold = 1
    rise = 1
    notes = ("tcp_connect interval 2 (minimum accepted), timeout 1, down_thresh 1, "
             "ok_thresh 1, up_thresh 1; multifo (up_thresh 0.5); DYNA ttl 1, min_ttl 0")
    BIN = "/usr/sbin/gdnsd"

    def missing(self):
        if not os.access(self.BIN, os.X_OK):
            return "gdnsd not installed"
        return None

    def version(self):
        return "gdnsd " + _dpkg_version("gdnsd")

    def argv(self):
        d = self.tmp / "gdnsd"
        (d / "zones").mkdir(parents=True, exist_ok=True)
        (d / "config").write_text(
            "options => {\n"
            "  listen => [ 127.0.0.1 ]\n"
            "  dns_port => %d\n"
            "  run_dir => %s\n"
            "  state_dir => %s\n"
            "  min_ttl => 0\n"
            "}\n"
            "service_types => {\n"
            "  backend => {\n"
            "    plugin => tcp_connect, port => %d\n"
            "    interval => 2, timeout => 1\n"
            "    up_thresh => 1, ok_thresh => 1, down_thresh => 1\n"
            "  }\n"
            "}\n"
            "plugins => {\n"
            "  multifo => {\n"
            "    user-service => { service_types => backend, addrs_v4 => [ %s ] }\n"
            "  }\n"
            "}\n" % (self.port, d / "run", d / "state", self.bport, ", ".join(BACKENDS)))
        (d / "zones" / "mesh").write_text(
            "@ 60 SOA ns1 hostmaster 1 3600 600 86400 60\n"
            "@ 60 NS ns1\n"
            "ns1 60 A 127.0.0.1\n"
            "user-service 1 DYNA multifo!user-service\n")
        return [self.BIN, "-c", str(d), "start"]


class Pdns(Peer):
    name = "pdns-lua"
    # lua-health-checks-interval is whole seconds; 1 is the smallest that
    # makes sense (0 would spin the checker thread).  4.7's ifportup has no
    # failure threshold: one failed connect marks the address down.
    interval_ms = 1000
    threshold = 1
    rise = 1
    notes = ("bind backend, LUA ifportup(selector='all'), lua-health-checks-interval=1, "
             "check timeout 2 s (default), packet cache default (cache-ttl=20, "
             "bounded by record ttl 1)")
    BIN = "/usr/sbin/pdns_server"

    def missing(self):
        if not os.access(self.BIN, os.X_OK):
            return "pdns_server not installed"
        if not Path("/usr/lib/x86_64-linux-gnu/pdns/libbindbackend.so").exists() and \
           not list(Path("/usr/lib").glob("*/pdns/libbindbackend.so")):
            return "pdns bind backend not installed"
        return None

    def version(self):
        return "pdns-server " + _dpkg_version("pdns-server")

    def argv(self):
        d = self.tmp / "pdns"
        d.mkdir(parents=True, exist_ok=True)
        (d / "mesh.zone").write_text(
            "$TTL 60\n"
            "@ IN SOA ns1.mesh. hostmaster.mesh. 1 3600 600 86400 60\n"
            "@ IN NS ns1.mesh.\n"
            "ns1 IN A 127.0.0.1\n"
            "user-service 1 IN LUA A \"ifportup(%d, {%s}, {selector='all'})\"\n"
            % (self.bport, ",".join("'%s'" % a for a in BACKENDS)))
        (d / "named.conf").write_text(
            'zone "mesh" { type master; file "%s"; };\n' % (d / "mesh.zone"))
        (d / "pdns.conf").write_text(
            "launch=bind\n"
            "bind-config=%s\n"
            "local-address=127.0.0.1\n"
            "local-port=%d\n"
            "enable-lua-records=yes\n"
            "lua-health-checks-interval=1\n"
            "socket-dir=%s\n"
            "guardian=no\n"
            "daemon=no\n"
            "disable-syslog=yes\n"
            "security-poll-suffix=\n"
            % (d / "named.conf", self.port, d))
        return [self.BIN, "--config-dir=%s" % d]


PEERS = {"dnsd": Dnsd, "gdnsd": Gdnsd, "pdns": Pdns}


# ---------------------------------------------------------------- one server

def run_server(cls, runs, verify_s, rng, tmp, say):
    out = dict(server=cls.name, status="ok")
    bport = free_backend_port()
    port = free_udp_tcp_port()
    peer = cls(tmp, port, bport)
    why = peer.missing()
    if why:
        out.update(status="skipped", reason=why)
        say("%s: skipped: %s" % (cls.name, why))
        return out
    out.update(version=peer.version(), settings=peer.settings(), port=port, backend_port=bport)
    backends = {a: Backend(a, bport) for a in BACKENDS}
    total = Counters()
    warmc = Counters()
    try:
        for b in backends.values():
            b.start()
        t_start = now()
        peer.start()
        warm = wait_all_up(port, warmc)
        if warm is None or not peer.alive():
            rc = peer.proc.poll() if peer.proc else None
            out.update(status="failed",
                       reason="no answer with all 3 backends within %ds%s"
                       % (WAIT_MAX, "" if rc is None else " (exited %d)" % rc))
            say("%s: failed: %s\n%s" % (cls.name, out["reason"], _tail(peer.log)))
            return out
        out["warmup_ms"] = round((now() - t_start) * 1000)
        out["warmup_counters"] = warmc.as_dict()
        say("%s: all 3 backends in answers %.2f s after start" % (cls.name, warm))
        trials = []
        for i in range(runs):
            res, c = trial(port, backends[DEAD], peer.interval_ms / 1000, verify_s, rng)
            total.add(c)
            trials.append(res)
            say("%s: run %d: failover %s ms (last check %s ms before), recovery %s ms "
                "(first check after %s ms), flaps %d, errors %d/%d"
                % (cls.name, i + 1, res["failover_ms"], res["last_check_before_kill_ms"],
                   res["recovery_ms"], res["first_check_after_restart_ms"], res["flaps"],
                   c.errors(), c.queries))
            if not peer.alive():
                out.update(status="failed", reason="server exited during run %d" % (i + 1))
                say("%s: failed: %s\n%s" % (cls.name, out["reason"], _tail(peer.log)))
                break
            if res["recovery_ms"] is None:
                break
            # Let the checker see the backend up for a while before the next kill.
            wait_all_up(port, total, limit=WAIT_MAX, settle=0.3)
        out["trials"] = trials
        out["counters"] = total.as_dict()
        out["summary"] = summarize(trials, total)
    finally:
        peer.stop()
        for b in backends.values():
            b.stop()
    return out


def _mmm(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return dict(min=min(vals), median=round(statistics.median(vals), 1), max=max(vals),
                n=len(vals))


def summarize(trials, total):
    return dict(
        failover_ms=_mmm([t["failover_ms"] for t in trials]),
        recovery_ms=_mmm([t["recovery_ms"] for t in trials]),
        failover_missed=sum(1 for t in trials if t["failover_ms"] is None),
        flaps=sum(t["flaps"] for t in trials),
        missing_live=sum(t["missing_live"] for t in trials),
        pre_missing=sum(t["pre_missing"] for t in trials),
        errors=total.errors(),
        queries=total.queries)


# ---------------------------------------------------------------- report

def _fmt_mmm(m):
    if m is None:
        return "-"
    return "%g / %g / %g" % (m["min"], m["median"], m["max"])


def table(results):
    head = "%-10s  %-28s  %-30s  %-26s  %s" % (
        "server", "check interval x threshold", "failover min/median/max (ms)",
        "recovery min/med/max (ms)", "errors")
    lines = [head]
    for r in results:
        if r["status"] == "skipped":
            lines.append("%-10s  skipped: %s" % (r["server"], r["reason"]))
            continue
        if "summary" not in r:
            lines.append("%-10s  failed: %s" % (r["server"], r.get("reason", "?")))
            continue
        s, st, c = r["summary"], r["settings"], r["counters"]
        iv = "%d ms x %d (up %d)" % (st["interval_ms"], st["down_threshold"], st["up_threshold"])
        err = "%d/%d q (to %d, sf %d, other %d); flaps %d; missed %d" % (
            s["errors"], s["queries"], c["timeouts"], c["servfail"],
            c["other_rcode"] + c["neterr"], s["flaps"], s["failover_missed"])
        if s["missing_live"] or s["pre_missing"] or c["empty"]:
            err += "; odd answers: %d missing a live backend, %d without %s before T0, %d empty" % (
                s["missing_live"], s["pre_missing"], DEAD, c["empty"])
        line = "%-10s  %-28s  %-30s  %-26s  %s" % (
            r["server"], iv, _fmt_mmm(s["failover_ms"]), _fmt_mmm(s["recovery_ms"]), err)
        if r["status"] != "ok":
            line += "  [%s: %s]" % (r["status"], r.get("reason", ""))
        lines.append(line)
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="kills per server (5)")
    ap.add_argument("--servers", default="dnsd,gdnsd,pdns",
                    help="comma-separated subset of dnsd,gdnsd,pdns")
    ap.add_argument("--verify", type=float, default=3.0,
                    help="seconds after failover in which the dead backend must stay out (3)")
    ap.add_argument("--seed", type=int, default=None, help="seed for the kill phases")
    ap.add_argument("--out", default=str(RESULTS), help="results directory")
    ap.add_argument("--no-write", action="store_true", help="print only, write no files")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs)")
    args = ap.parse_args(argv)

    if dns is None:
        print("failover.py: needs dnspython; run with /usr/bin/python3", file=sys.stderr)
        return 2
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    bad = [n for n in names if n not in PEERS]
    if bad:
        print("failover.py: unknown server(s): %s" % ", ".join(bad), file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    rng = random.Random(seed)

    def say(msg):
        print(msg, flush=True)

    # SIGTERM from `make` or a test runner: stop our children on the way out.
    def on_term(signum, frame):
        raise KeyboardInterrupt
    old = signal.signal(signal.SIGTERM, on_term) \
        if threading.current_thread() is threading.main_thread() else None

    tmp = tempfile.mkdtemp(prefix="meshdns-failover-")
    started = datetime.datetime.now()
    results = []
    try:
        for n in names:
            results.append(run_server(PEERS[n], args.runs, args.verify, rng, tmp, say))
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        _cleanup_all()
        if old is not None:
            signal.signal(signal.SIGTERM, old)
        if args.keep:
            say("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    txt = table(results)
    print()
    print(txt)
    doc = dict(
        bench="failover", started=started.isoformat(timespec="seconds"),
        duration_s=round((datetime.datetime.now() - started).total_seconds(), 1),
        host=dict(kernel=platform.release(), cpus=os.cpu_count(),
                  python=platform.python_version(), dnspython=dns.version.version),
        method=dict(qname=QNAME, backends=BACKENDS, dead=DEAD, query_gap_ms=QUERY_GAP * 1000,
                    query_timeout_ms=QUERY_TIMEOUT * 1000, verify_s=args.verify,
                    runs=args.runs, seed=seed, wait_max_s=WAIT_MAX),
        results=results)
    if not args.no_write:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        stem = "failover-" + started.strftime("%Y-%m-%d")
        (out / (stem + ".json")).write_text(json.dumps(doc, indent=1) + "\n")
        hdr = "# failover bench %s, %s, %d runs per server, seed %d\n" % (
            doc["started"], platform.node() and "kernel " + platform.release(), args.runs, seed)
        (out / (stem + ".txt")).write_text(hdr + txt + "\n")
        say("wrote %s.{json,txt}" % (out / stem))
    failed = [r for r in results if r["status"] == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
